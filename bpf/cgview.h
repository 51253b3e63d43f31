/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by every cgview BPF program: kernel types, libbpf helpers and the
 * view kit (bpf/include/cgview/, see its README.md). New code includes
 * <cgview/cgview.h> directly; this name stays for objects written before.
 */
#ifndef CGVIEW_H
#define CGVIEW_H

#include <cgview/cgview.h>

#endif
