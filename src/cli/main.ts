/**
 * cgview command line: parses argv and dispatches to one command module.
 * Every command returns its exit status; errors are printed as
 * "cgview: <message>" with the hint, and the verifier log with --verbose.
 */
import { CgviewError } from '../errors.js';

export const USAGE = `usage: cgview <command> [options]

commands:
  daemon   [--bpffs DIR] [--cgroup-root DIR] [--state FILE] [--socket PATH] [--listen HOST:PORT]
           [--no-default-views] [--private-dir DIR] [--log-level LEVEL] [--socket-mode OCTAL]
                                         run the manager in the foreground (root)
  pin VIEW DIR [--cgroup CGROUP_DIR] [--inherit] [--name NAME] [--mode auto|manual] [--file-mode OCTAL]
                                         pin a view (built-in name or file.bpf.o:program)
  unpin DIR/NAME                         remove a pin (an inherited one from the whole tree)
  ls [DIR]                               tagged trees, or the views of one directory
  cat CGROUP_OR_VIEW_PATH [VIEW] [--json]
                                         print the views of a cgroup (or one view file)
  status                                 daemon, trees, counts, watches, collectors
  doctor [--json]                        check the kernel features cgview needs

Client commands take --socket PATH (default: $CGVIEW_SOCKET, else /run/cgview/cgview.sock);
--json where it makes sense; --verbose for whole verifier logs and stacks.
Docs: README.md and docs/ in the repository.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  doctor: async () => (await import('./doctor.js')).doctor,
  daemon: async () => (await import('./daemon.js')).daemon,
  pin: async () => (await import('./client.js')).pin,
  unpin: async () => (await import('./client.js')).unpin,
  ls: async () => (await import('./client.js')).ls,
  cat: async () => (await import('./client.js')).cat,
  status: async () => (await import('./client.js')).status,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`cgview: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  const verbose = rest.includes('--verbose') || rest.includes('-v');
  try {
    return await (await load())(rest.filter((a) => a !== '--verbose' && a !== '-v'));
  } catch (e) {
    printError(e, verbose);
    return 1;
  }
}

export function printError(e: unknown, verbose: boolean): void {
  if (e instanceof CgviewError) {
    console.error(`cgview: ${e.message}`);
    if (e.hint) console.error(`  hint: ${e.hint}`);
    if (verbose && e.log) console.error(`--- log ---\n${e.log}`);
    return;
  }
  console.error(`cgview: ${e instanceof Error ? (verbose ? e.stack : e.message) : String(e)}`);
}
