// Reference server for deploy/dev/reference.sh: node-webot `wechat` on Node's cluster
// (WORKERS, default 2, one per core). The middleware verifies, decrypts and parses each
// callback; the handler answers `success`, as the gateway does without a reply, or with
// REPLY=1 a text reply (encrypted in safe mode by the middleware, as the library does by
// default). Nothing is made durable.
const cluster = require('cluster');
const http = require('http');
const wechat = require('wechat');
const workers = parseInt(process.env.WORKERS || '2', 10);
const port = parseInt(process.env.PORT || '18095', 10);
const reply = process.env.REPLY === '1';
const TEXT = '您好，已收到，工作人员会尽快处理。';
if (cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork();
} else {
  const handle = wechat({
    token: 'bench-token',
    appid: 'wxbench000000001',
    encodingAESKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    checkSignature: true,
  }, (req, res) => {
    if (reply) { res.reply(TEXT); return; }
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 7 });
    res.end('success');
  });
  http.createServer((req, res) => {
    req.query = Object.fromEntries(new URL(req.url, 'http://x').searchParams);
    handle(req, res, (err) => { res.writeHead(400); res.end(String(err)); });
  }).listen(port, '127.0.0.1');
}
