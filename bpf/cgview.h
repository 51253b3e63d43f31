/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by every cgview BPF program: kernel types and libbpf helpers. */
#ifndef CGVIEW_H
#define CGVIEW_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#endif
