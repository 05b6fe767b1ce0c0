// Drives sockjs-client (the library the seed-002 web client uses) against
// /signal: node sockjs-signal.cjs URL TRANSPORT. Every stdin line is sent
// as one SockJS message; every message received is printed as one line;
// "OPEN" and "CLOSE code" mark the connection's life.
const SockJS = require('sockjs-client');
const readline = require('readline');

const [url, transport] = process.argv.slice(2);
const sock = new SockJS(url, null, { transports: [transport] });
const queue = [];
let open = false;
sock.onopen = () => {
  open = true;
  process.stdout.write('OPEN ' + sock.transport + '\n');
  for (const line of queue.splice(0)) sock.send(line);
};
sock.onmessage = (e) => process.stdout.write(e.data.replace(/\n/g, ' ') + '\n');
sock.onclose = (e) => {
  process.stdout.write('CLOSE ' + e.code + '\n');
  process.exit(0);
};
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'QUIT') { sock.close(); return; }
  if (open) sock.send(line); else queue.push(line);
});
