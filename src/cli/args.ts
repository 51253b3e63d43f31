/** A small strict argv parser: known flags only, clear errors for the rest. */
import { CgviewError } from '../errors.js';

export interface FlagSpec {
  /** Flags that take a value. */
  values?: string[];
  /** Flags without a value. */
  bools?: string[];
}

export interface Parsed {
  positional: string[];
  values: Map<string, string>;
  bools: Set<string>;
}

export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const out: Parsed = { positional: [], values: new Map(), bools: new Set() };
  const values = new Set(spec.values ?? []);
  const bools = new Set(spec.bools ?? []);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (values.has(name)) {
        const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new CgviewError('E_BAD_INPUT', `--${name} needs a value`);
        out.values.set(name, v);
      } else if (bools.has(name) && eq < 0) out.bools.add(name);
      else
        throw new CgviewError('E_BAD_INPUT', `unknown option --${name}`, {
          hint: 'cgview --help lists the options',
        });
    } else out.positional.push(a);
  }
  return out;
}
