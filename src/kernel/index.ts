export * from './bpf.js';
export * from './fd.js';
export * from './inotify.js';
export * from './magic.js';
export * from './sys.js';
