/** Reading /proc for the process on a port: the LISTEN sockets of /proc/net/tcp, a variable of an environ. */
import { describe, expect, it } from 'vitest';
import { environValue, listeningInodes } from '../../src/sources/proc-listener.js';

// /proc/net/tcp in Linux's format: the header and first row as read on a development machine (a
// listener on 0.0.0.0:2024, 0x07E8), then, in the same format, a listener on 127.0.0.1:8188 (0x1FFC)
// and an established connection from port 33066 to it.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1122 1 000000004626db67 100 0 0 10 0
   1: 0100007F:1FFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 58231 1 0000000029ffd6bc 100 0 0 10 0
   2: 0100007F:812A 0100007F:1FFC 01 00000000:00000000 03:000006CB 00000000  1000        0 58299 3 0000000029ffd6bc 20 4 30 10 -1
`;

describe('the sockets listening on a port', () => {
  it('are the LISTEN (0A) rows whose local port matches, by inode', () => {
    expect(listeningInodes(TCP, 8188)).toEqual(['58231']);
    expect(listeningInodes(TCP, 2024)).toEqual(['1122']);
  });

  it('leave out established connections that merely talk to the port', () => {
    expect(listeningInodes(TCP, 33066)).toEqual([]);
  });

  it('are none in an empty or unreadable table', () => {
    expect(listeningInodes('', 8188)).toEqual([]);
  });
});

describe('a variable of a process environment', () => {
  it('is its value, empty included, or null when it is not set', () => {
    const environ = 'PATH=/usr/bin\0CUDA_VISIBLE_DEVICES=1\0EMPTY=\0';
    expect(environValue(environ, 'CUDA_VISIBLE_DEVICES')).toBe('1');
    expect(environValue(environ, 'EMPTY')).toBe('');
    expect(environValue(environ, 'CUDA_DEVICE_ORDER')).toBeNull();
  });
});
