/**
 * Errno names (native/src/errname.c): every Linux errno has its name, positive or negative,
 * and errnoName() reports those Node's own tables lack instead of a number.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, test } from 'node:test';
import { loadBinding } from '../../src/core/binding.js';
import { errnoName } from '../../src/core/errors.js';
import { nativeAvailable } from '../helpers/backends.js';

/** Names Node lists that are aliases of another name for the same number on Linux. */
const ALIASES: Record<string, string> = { EWOULDBLOCK: 'EAGAIN', EDEADLOCK: 'EDEADLK', ENOTSUP: 'EOPNOTSUPP' };

describe('errno names', { skip: !nativeAvailable && 'native backend unavailable' }, () => {
  const b = loadBinding()!;

  test('every errno Node knows has the same name natively, for n and -n', () => {
    for (const [name, n] of Object.entries(constants.errno)) {
      const want = ALIASES[name] ?? name;
      assert.equal(b.errname(n), want, `errno ${n}`);
      assert.equal(b.errname(-n), want, `errno -${n}`);
    }
  });

  test('errnos Node does not list have their names too', () => {
    // Linux values (asm-generic/errno.h), absent from os.constants.errno and libuv's table.
    const linux: Record<string, number> = { ECHRNG: 44, EBADE: 52, ENOSTR: 60, EREMCHG: 78, ESTRPIPE: 86, EUCLEAN: 117, ENOKEY: 126, EKEYREJECTED: 129, EHWPOISON: 133 };
    for (const [name, n] of Object.entries(linux)) {
      assert.equal(b.errname(-n), name);
      assert.equal(errnoName(-n), name);
    }
  });

  test('no name for 0, unused numbers or out-of-range values', () => {
    assert.equal(b.errname(0), undefined);
    assert.equal(b.errname(41), undefined); // unused on Linux
    assert.equal(b.errname(100000), undefined);
    assert.equal(b.errname(-100000), undefined);
    assert.equal(errnoName(-100000), 'E100000');
  });
});
