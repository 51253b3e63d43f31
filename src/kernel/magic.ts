/** Filesystem magic numbers (statfs f_type); no FFI here, so the CLI can use them cheaply. */
export { BPF_FS_MAGIC, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC } from './abi.js';
