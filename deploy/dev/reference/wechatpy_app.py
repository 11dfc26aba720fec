# Reference server for deploy/dev/reference.sh: wechatpy on uvicorn (raw ASGI, no
# framework). It verifies, decrypts and parses each callback and answers `success`, as
# the gateway does without a reply, or with REPLY=1 a text reply (encrypted in safe
# mode, as wechatpy's documented handler does). Nothing is made durable.
import os
from urllib.parse import parse_qs
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

TOKEN, APPID = "bench-token", "wxbench000000001"
crypto = WeChatCrypto(TOKEN, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", APPID)
REPLY = os.environ.get("REPLY") == "1"
TEXT = "您好，已收到，工作人员会尽快处理。"

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body, more = b"", True
    while more:
        m = await receive()
        body += m.get("body", b"")
        more = m.get("more_body", False)
    q = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    try:
        check_signature(TOKEN, q["signature"], q["timestamp"], q["nonce"])
        if q.get("encrypt_type") == "aes":
            xml = crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
        else:
            xml = body
        msg = parse_message(xml)
        status, out = 200, b"success"
        if REPLY:
            out = TextReply(content=TEXT, message=msg).render()
            if q.get("encrypt_type") == "aes":
                out = crypto.encrypt_message(out, q["nonce"], q["timestamp"])
            out = out.encode()
    except Exception as e:  # a refused callback, as the gateway refuses it
        status, out = 400, str(e).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
