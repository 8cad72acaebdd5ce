/**
 * Headless Chromium for the browser tests: /usr/bin/chromium (Debian's `chromium`), or the
 * path in C1M_CHROMIUM.
 */
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.C1M_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_MISSING = !existsSync(CHROMIUM);

/**
 * Launch it without LD_PRELOAD: `npm run test:asan` preloads libasan into node, and a
 * Chromium that inherited it hangs at start.
 */
export async function launchChromium(timeout = 60_000, args: readonly string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const env = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[0] !== 'LD_PRELOAD' && e[1] !== undefined));
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', ...args], timeout, env });
}
