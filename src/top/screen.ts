/**
 * The small terminal layer of `cgview top` (docs/top.md says why it is not a
 * library): the alternate screen, the cursor hidden, raw-mode keys, a redraw
 * that writes only the lines that changed (in one write, so no flicker),
 * SIGWINCH, and the terminal restored on every way out: quit, Ctrl-C (a key
 * in raw mode), SIGTERM/SIGHUP, and an uncaught exception.
 */

export type Key =
  | 'up'
  | 'down'
  | 'left'
  | 'right'
  | 'pageup'
  | 'pagedown'
  | 'home'
  | 'end'
  | 'enter'
  | 'escape'
  | 'backspace'
  | 'tab'
  | 'ctrl-c'
  | 'ctrl-l'
  | { char: string };

const SEQ: Record<string, Key> = {
  '\x1b[A': 'up',
  '\x1b[B': 'down',
  '\x1b[C': 'right',
  '\x1b[D': 'left',
  '\x1bOA': 'up',
  '\x1bOB': 'down',
  '\x1bOC': 'right',
  '\x1bOD': 'left',
  '\x1b[5~': 'pageup',
  '\x1b[6~': 'pagedown',
  '\x1b[H': 'home',
  '\x1b[F': 'end',
  '\x1b[1~': 'home',
  '\x1b[4~': 'end',
  '\x1bOH': 'home',
  '\x1bOF': 'end',
};

/** The keys in one chunk of terminal input (pure). An unknown escape sequence is dropped. */
export function parseKeys(data: string): Key[] {
  const out: Key[] = [];
  let i = 0;
  while (i < data.length) {
    const c = data[i]!;
    if (c === '\x1b') {
      if (i + 1 >= data.length) {
        out.push('escape');
        i++;
        continue;
      }
      // CSI/SS3: ESC [ params final, ESC O final.
      const m = /^\x1b(?:\[[0-9;?]*[\x40-\x7e]|O[\x40-\x7e])/.exec(data.slice(i));
      if (m) {
        const k = SEQ[m[0]];
        if (k) out.push(k);
        i += m[0].length;
      } else {
        out.push('escape');
        i++;
      }
      continue;
    }
    i++;
    if (c === '\r' || c === '\n') out.push('enter');
    else if (c === '\x7f' || c === '\b') out.push('backspace');
    else if (c === '\t') out.push('tab');
    else if (c === '\x03') out.push('ctrl-c');
    else if (c === '\x0c') out.push('ctrl-l');
    else if (c >= ' ') out.push({ char: c });
  }
  return out;
}

export interface Styles {
  /** Header and selection (reverse video: an attribute, not a colour). */
  reverse(s: string): string;
  bold(s: string): string;
  /** Colours: identity functions when colour is off. */
  warn(s: string): string;
  dim(s: string): string;
  info(s: string): string;
}

export function styles(colour: boolean): Styles {
  return {
    reverse: (s) => `\x1b[7m${s}\x1b[27m`,
    bold: (s) => `\x1b[1m${s}\x1b[22m`,
    warn: colour ? (s) => `\x1b[33m${s}\x1b[39m` : (s) => s,
    dim: colour ? (s) => `\x1b[2m${s}\x1b[22m` : (s) => s,
    info: colour ? (s) => `\x1b[36m${s}\x1b[39m` : (s) => s,
  };
}

/** Colour is on for a terminal unless NO_COLOR is set (to anything but ''), https://no-color.org. */
export function wantColour(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  return isTTY && !(env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') && env['TERM'] !== 'dumb';
}

export class Screen {
  readonly #out: NodeJS.WriteStream;
  readonly #in: NodeJS.ReadStream;
  #prev: string[] = [];
  #active = false;
  #onKeys: ((k: Key[]) => void) | undefined;
  #onResize: (() => void) | undefined;
  readonly #data = (d: Buffer | string) =>
    this.#onKeys?.(parseKeys(typeof d === 'string' ? d : d.toString('utf8')));
  readonly #winch = () => {
    this.#prev = []; // a resize may have scrambled anything: draw everything next time
    this.#onResize?.();
  };
  readonly #restoreOnExit = () => this.restore();
  readonly #signal = (sig: NodeJS.Signals) => {
    this.restore();
    process.kill(process.pid, sig);
  };
  readonly #crash = (e: unknown) => {
    this.restore();
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exit(1);
  };

  constructor(out: NodeJS.WriteStream = process.stdout, input: NodeJS.ReadStream = process.stdin) {
    this.#out = out;
    this.#in = input;
  }

  get columns(): number {
    return this.#out.columns || 80;
  }

  get rows(): number {
    return this.#out.rows || 24;
  }

  /** Alternate screen, no cursor, raw keys; handlers that restore the terminal however the process ends. */
  enter(onKeys: (k: Key[]) => void, onResize: () => void): void {
    this.#onKeys = onKeys;
    this.#onResize = onResize;
    this.#active = true;
    process.on('exit', this.#restoreOnExit);
    for (const s of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.once(s, this.#signal);
    process.on('uncaughtException', this.#crash);
    process.on('unhandledRejection', this.#crash);
    process.on('SIGWINCH', this.#winch);
    if (this.#in.isTTY) this.#in.setRawMode(true);
    this.#in.on('data', this.#data);
    this.#in.resume();
    this.#out.write('\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J');
  }

  /**
   * Shows `lines` (each already at most `columns` wide): only the lines that
   * differ from the last draw are written, all in one write.
   */
  draw(lines: readonly string[]): void {
    if (!this.#active) return;
    const n = this.rows;
    let s = '';
    const full = this.#prev.length === 0;
    if (full) s += '\x1b[H\x1b[2J';
    for (let i = 0; i < n; i++) {
      const l = lines[i] ?? '';
      if (!full && this.#prev[i] === l) continue;
      if (full && l === '') continue;
      s += `\x1b[${i + 1};1H${l}\x1b[K`;
    }
    this.#prev = Array.from({ length: n }, (_, i) => lines[i] ?? '');
    if (s) this.#out.write(s);
  }

  /** Forget what is on the screen: the next draw writes everything (Ctrl-L). */
  invalidate(): void {
    this.#prev = [];
  }

  /** Leaves the alternate screen and gives the terminal back as it was; safe to call twice. */
  restore(): void {
    if (!this.#active) return;
    this.#active = false;
    this.#in.off('data', this.#data);
    if (this.#in.isTTY) {
      try {
        this.#in.setRawMode(false);
      } catch {
        /* the terminal is gone */
      }
    }
    this.#in.pause();
    try {
      this.#out.write('\x1b[?25h\x1b[?1049l');
    } catch {
      /* the terminal is gone */
    }
    process.off('exit', this.#restoreOnExit);
    for (const s of ['SIGTERM', 'SIGHUP', 'SIGINT'] as const) process.off(s, this.#signal);
    process.off('uncaughtException', this.#crash);
    process.off('unhandledRejection', this.#crash);
    process.off('SIGWINCH', this.#winch);
  }
}
