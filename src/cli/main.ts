/**
 * cgview command line: parses argv and dispatches to one command module.
 * Every command returns its exit status; errors are printed as
 * "cgview: <message>" with the hint, and the verifier log with --verbose.
 * Exit status: 0 done, 1 failed (or, for doctor, a required check failed),
 * 2 the command was called wrongly (unknown command or option, missing value
 * or argument, malformed option value).
 */
import { CgviewError } from '../errors.js';
import { argvBytes, isUsageError, OPTIONS, parseArgs, wantsVerbose, writeText } from './args.js';

export const USAGE = `usage: cgview <command> [options]

commands:
  daemon   [--bpffs DIR] [--cgroup-root DIR] [--state FILE] [--socket PATH] [--listen HOST:PORT]
           [--web-config FILE] [--metrics-config FILE] [--sample-interval SECONDS] [--history SECONDS]
           [--default-views VIEW,…] [--no-default-views] [--private-dir DIR] [--log-level LEVEL]
           [--socket-mode OCTAL]
                                         run the manager in the foreground (root)
  pin VIEW DIR [--cgroup CGROUP_DIR] [--inherit] [--name NAME] [--mode auto|manual] [--file-mode OCTAL]
                                         pin a view (built-in name or file.bpf.o:program)
  unpin DIR/NAME                         remove a pin (an inherited one from the whole tree)
  ls [DIR]                               tagged trees, or the views of one directory
  cat CGROUP_OR_VIEW_PATH [VIEW] [--json]
                                         print the views of a cgroup (or one view file)
  status                                 daemon, trees, counts, watches, collectors
  build FILE.bpf.c [-o OUT] [--json]     compile a view (and its collector) with the kit; list its
                                         programs and maps (pin ./x.bpf.c:prog builds on the fly)
  new-view NAME [--with-collector]       write a view skeleton NAME.bpf.c in the current directory
  doctor [--json]                        check the kernel features cgview needs
  top [CGROUP_OR_TREE_DIR] [--delay S] [--sort KEY] [--depth N] [--batch] [--iterations N] [--json]
                                         live interval figures of every cgroup's views (q quits)

Client commands take --socket PATH (default: $CGVIEW_SOCKET, else /run/cgview/cgview.sock);
--json where it makes sense; --verbose (-v) for whole verifier logs and stacks; --help (-h).
An option's value is the next word (--name -v names a view "-v"); arguments after -- are
never options. Paths are taken as the bytes given (names need not be UTF-8).
Exit status: 0 done, 1 failed, 2 wrong usage.
Docs: README.md and docs/ in the repository.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  doctor: async () => (await import('./doctor.js')).doctor,
  build: async () => (await import('./build.js')).build,
  'new-view': async () => (await import('./new-view.js')).newView,
  daemon: async () => (await import('./daemon.js')).daemon,
  pin: async () => (await import('./client.js')).pin,
  unpin: async () => (await import('./client.js')).unpin,
  ls: async () => (await import('./client.js')).ls,
  cat: async () => (await import('./client.js')).cat,
  status: async () => (await import('./client.js')).status,
  top: async () => (await import('./top.js')).top,
};

/**
 * Runs one command. `argv` holds byte strings (one char per byte); by
 * default the process's own arguments, read as bytes.
 */
export async function main(argv: string[] = argvBytes()): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    if (name) console.log(USAGE);
    else console.error(USAGE);
    return name ? 0 : 2;
  }
  // Own properties only: `cgview constructor` is an unknown command, not Object's.
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!load || !Object.hasOwn(OPTIONS, name)) {
    writeText(process.stderr, `cgview: unknown command ${JSON.stringify(name)}\n\n${USAGE}\n`);
    return 2;
  }
  const verbose = wantsVerbose(name, rest);
  try {
    // Options are checked here, before the command loads anything.
    if (parseArgs(rest, OPTIONS[name]!).bools.has('help')) {
      console.log(USAGE);
      return 0;
    }
    return await (await load())(rest);
  } catch (e) {
    printError(e, verbose);
    return isUsageError(e) ? 2 : 1;
  }
}

export function printError(e: unknown, verbose: boolean): void {
  if (e instanceof CgviewError) {
    writeText(process.stderr, `cgview: ${e.message}\n`);
    if (e.hint) writeText(process.stderr, `  hint: ${e.hint}\n`);
    if (verbose && e.log) console.error(`--- log ---\n${e.log}`);
    return;
  }
  console.error(`cgview: ${e instanceof Error ? (verbose ? e.stack : e.message) : String(e)}`);
}
