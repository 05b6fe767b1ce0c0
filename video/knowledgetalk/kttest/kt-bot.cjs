// A KnowledgeTalk client for the Go tests (package kttest): node kt-bot.cjs v2|v4 URL.
// v2 is socket.io-client 2.3.0 (Engine.IO 3, the deployed web client's
// library), v4 socket.io-client 4.x (Engine.IO 4). It connects to
// URL/SignalServer over the websocket transport as the deployed client
// does; v2-polling and v4-polling use HTTP long-polling instead. Every stdin line is a command:
//   {"emit": {...}}  emit a knowledgetalk event
//   {"close": true}  socket.close() (the client says goodbye)
//   {"drop": true}   exit at once: the page went away, the TCP connection drops
// Every stdout line is an event: {"event":"connect","id":...},
// {"event":"msg","data":{...}}, {"event":"disconnect","reason":...},
// {"event":"error","message":...}.
const [gen, url] = process.argv.slice(2);
const io = require(gen.startsWith('v2') ? 'socket.io-client-v2' : 'socket.io-client');
const transports = gen.endsWith('-polling') ? ['polling'] : ['websocket'];
const readline = require('readline');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const socket = io.connect(url + '/SignalServer', { transports, reconnection: false });
socket.on('connect', () => out({ event: 'connect', id: socket.id }));
socket.on('knowledgetalk', (m) => out({ event: 'msg', data: m }));
socket.on('disconnect', (reason) => out({ event: 'disconnect', reason: String(reason) }));
socket.on('connect_error', (e) => out({ event: 'error', message: String(e && e.message) }));
socket.on('error', (e) => out({ event: 'error', message: String(e && e.message || e) }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  if (cmd.emit) socket.emit('knowledgetalk', cmd.emit);
  if (cmd.close) socket.close();
  if (cmd.drop) process.exit(0);
}).on('close', () => process.exit(0));
