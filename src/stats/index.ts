/** Pure interval math and key conventions shared by the exporter, `cgview top` and the dashboard. */
export * from './interval.js';
export * from './keys.js';
export * from './sched.js';
