export * from './bpf.js';
export * from './fd.js';
export * from './inotify.js';
export * from './magic.js';
export * from './peercred.js';
export * from './sys.js';
