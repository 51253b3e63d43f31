export * from './bpf.js';
export * from './fd.js';
export * from './sys.js';
export * from './inotify.js';
