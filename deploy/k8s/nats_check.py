#!/usr/bin/env python3
"""The NATS accounts of infra/nats-values.yaml, rendered as the Helm chart renders them
and proved on a real nats-server.

    nats_check.py check
        Starts nats-server (2.9, Debian's) on a free loopback port with the accounts,
        each password a random secret in the server's environment as the chart's pods
        get it, then connects as every user and tries what each must and must not do
        (EXPECTED below). Exit 1 on any difference. Run by deploy/k8s/check.sh.

    nats_check.py render --port P --store DIR [--monitor M] --secrets FILE
        Writes a nats-server configuration (stdout) for a private dev stack
        (deploy/dev/stack-lib.sh): these accounts plus one unrestricted `stack` user for
        the harness's own tools, who connect without credentials (no_auth_user). FILE gets one line per user, `user password VARIABLE`,
        with a fresh random password each; the server needs VARIABLE=password in its
        environment.

The chart (nats 1.0.3, templates/_helpers.tpl "nats.formatConfig") writes `config.merge`
as JSON and unquotes every "<< ... >>" string; nothing else of the chart is rendered here.
"""

import argparse
import json
import os
import pathlib
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time

import yaml

VALUES = pathlib.Path(__file__).resolve().parent / "infra" / "nats-values.yaml"
ACCOUNT = "GOVWX"
STACK_USER = "stack"

# (user, "pub" | "sub", subject, allowed?). Every service publishes its own events and
# no one else's, reads answers on its own inbox only, and nobody deletes or purges.
EXPECTED = [
    ("gateway", "pub", "wechat.inbound.demo.msg.text", True),
    ("gateway", "pub", "wechat.reply.demo", True),
    ("gateway", "pub", "$KV.GATEWAY_REPLIES.k", True),
    ("gateway", "sub", "_INBOX_gateway.abc.*", True),
    ("gateway", "sub", "interaction-svc.rules.changed.*", True),
    ("gateway", "pub", "interaction.demo.ticket.opened", False),
    ("gateway", "pub", "content.demo.article.published", False),
    ("gateway", "pub", "stats.demo.alarm.overdue_share", False),
    ("gateway", "pub", "$KV.wechat_access_tokens.wxdemo", False),
    ("gateway", "pub", "$JS.API.STREAM.DELETE.WECHAT_INBOUND", False),
    ("gateway", "pub", "$JS.API.STREAM.PURGE.WECHAT_INBOUND", False),
    ("gateway", "sub", "_INBOX.>", False),
    ("gateway", "sub", "_INBOX_interaction-svc.>", False),
    ("gateway", "sub", "wechat.reply.*", False),
    ("interaction-svc", "pub", "interaction.demo.ticket.opened", True),
    ("interaction-svc", "pub", "deadletter.interaction-svc.wechat_inbound", True),
    ("interaction-svc", "pub", "$JS.ACK.WECHAT_INBOUND.interaction-inbound.1.2.3.4.5", True),
    ("interaction-svc", "sub", "wechat.reply.*", True),
    # WatchQueue reads ticket changes through its consumers; the subscription is the
    # previous release's, kept for its pods during a rollout or rollback (one release).
    ("interaction-svc", "sub", "interaction.*.ticket.>", True),
    ("interaction-svc", "sub", "_INBOX_interaction-svc.>", True),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.CREATE.INTERACTION", True),
    # WatchQueue's consumers push to the inbox; none is pulled, stats-svc's least of all.
    ("interaction-svc", "pub", "$JS.FC.INTERACTION.abc123.x1y2", True),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.MSG.NEXT.INTERACTION.abc123", False),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.MSG.NEXT.INTERACTION.stats-tickets", False),
    ("interaction-svc", "pub", "$JS.FC.WECHAT_INBOUND.abc123.x1y2", False),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.CREATE.INTERACTION.stats-tickets.interaction.>", False),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.DELETE.INTERACTION.stats-tickets", False),
    ("interaction-svc", "pub", "$JS.ACK.INTERACTION.stats-tickets.1.2.3.4.5", False),
    ("interaction-svc", "pub", "wechat.inbound.demo.msg.text", False),
    ("interaction-svc", "pub", "content.demo.directory.updated", False),
    ("interaction-svc", "pub", "deadletter.content-svc.wechat_inbound", False),
    ("interaction-svc", "pub", "$JS.ACK.WECHAT_INBOUND.stats-inbound.1.2.3.4.5", False),
    ("interaction-svc", "pub", "$JS.API.CONSUMER.DELETE.WECHAT_INBOUND.stats-inbound", False),
    ("interaction-svc", "pub", "$JS.API.STREAM.DELETE.INTERACTION", False),
    ("interaction-svc", "sub", "_INBOX_gateway.>", False),
    ("content-svc", "pub", "content.demo.article.published", True),
    ("content-svc", "pub", "$KV.wechat_access_tokens.wxdemo", True),
    ("content-svc", "sub", "_INBOX_content-svc.>", True),
    ("content-svc", "pub", "wechat.inbound.demo.event.masssendjobfinish", False),
    ("content-svc", "pub", "interaction.demo.ticket.closed", False),
    ("content-svc", "pub", "$KV.GATEWAY_REPLIES.k", False),
    ("content-svc", "pub", "$JS.API.STREAM.PURGE.CONTENT", False),
    ("content-svc", "sub", "wechat.reply.*", False),
    ("content-svc", "sub", "wechat.inbound.>", False),
    ("stats-svc", "pub", "stats.demo.alarm.overdue_share", True),
    ("stats-svc", "pub", "$JS.API.STREAM.CREATE.STATS", True),
    ("stats-svc", "sub", "_INBOX_stats-svc.>", True),
    ("stats-svc", "pub", "interaction.demo.ticket.rated", False),
    ("stats-svc", "pub", "content.demo.article.published", False),
    ("stats-svc", "pub", "wechat.inbound.demo.msg.text", False),
    ("stats-svc", "pub", "$JS.API.STREAM.DELETE.STATS", False),
    ("stats-svc", "sub", "interaction.>", False),
    # Each durable is granted by name (reading them: consumer_probes, from the code).
    ("stats-svc", "pub", "$JS.API.CONSUMER.CREATE.CONTENT.stats-content.content.demo.article.published", True),
    ("stats-svc", "pub", "$JS.API.CONSUMER.CREATE.CONTENT.stats-content-retractions.content.demo.article.retracted", True),
    ("stats-svc", "pub", "$JS.API.CONSUMER.MSG.NEXT.CONTENT.content-search", False),
    # Operators (govwx deadletters, `nats` with --inbox-prefix _INBOX_ops): every stream's
    # and consumer's state; DEADLETTER read (get, an ephemeral or ordered consumer, next,
    # ack) and its letters deleted; a replay published on the original subject of a
    # stream consumers read. No dead letter written, no service durable read or acked, no
    # other stream's messages read, no stream changed, purged or deleted.
    ("ops", "sub", "_INBOX_ops.abc.*", True),
    ("ops", "pub", "$JS.API.INFO", True),
    ("ops", "pub", "$JS.API.STREAM.NAMES", True),
    ("ops", "pub", "$JS.API.STREAM.INFO.WECHAT_INBOUND", True),
    ("ops", "pub", "$JS.API.STREAM.INFO.DEADLETTER", True),
    ("ops", "pub", "$JS.API.CONSUMER.NAMES.CONTENT", True),
    ("ops", "pub", "$JS.API.CONSUMER.INFO.WECHAT_INBOUND.interaction-inbound", True),
    ("ops", "pub", "$JS.API.CONSUMER.INFO.INTERACTION.stats-tickets", True),
    ("ops", "pub", "$JS.API.STREAM.MSG.GET.DEADLETTER", True),
    ("ops", "pub", "$JS.API.STREAM.MSG.DELETE.DEADLETTER", True),
    ("ops", "pub", "$JS.API.CONSUMER.CREATE.DEADLETTER", True),
    ("ops", "pub", "$JS.API.CONSUMER.CREATE.DEADLETTER.view1.deadletter.>", True),
    ("ops", "pub", "$JS.API.CONSUMER.MSG.NEXT.DEADLETTER.view1", True),
    ("ops", "pub", "$JS.ACK.DEADLETTER.view1.1.2.3.4.5", True),
    ("ops", "pub", "$JS.FC.DEADLETTER.abc", True),
    ("ops", "pub", "$JS.API.CONSUMER.DELETE.DEADLETTER.view1", True),
    ("ops", "pub", "wechat.inbound.demo.msg.text", True),
    ("ops", "pub", "content.demo.article.published", True),
    ("ops", "pub", "interaction.demo.ticket.opened", True),
    ("ops", "pub", "deadletter.x.y", False),
    ("ops", "pub", "deadletter.stats-svc.wechat_inbound", False),
    ("ops", "pub", "wechat.reply.demo", False),
    ("ops", "pub", "stats.demo.alarm.overdue_share", False),
    ("ops", "pub", "interaction-svc.rules.changed.demo", False),
    ("ops", "pub", "$KV.wechat_access_tokens.wxdemo", False),
    ("ops", "pub", "$JS.API.STREAM.MSG.GET.WECHAT_INBOUND", False),
    ("ops", "pub", "$JS.API.STREAM.MSG.GET.KV_wechat_access_tokens", False),
    ("ops", "pub", "$JS.API.DIRECT.GET.KV_wechat_access_tokens.$KV.wechat_access_tokens.wxdemo", False),
    ("ops", "pub", "$JS.API.CONSUMER.CREATE.WECHAT_INBOUND", False),
    ("ops", "pub", "$JS.API.CONSUMER.MSG.NEXT.WECHAT_INBOUND.interaction-inbound", False),
    ("ops", "pub", "$JS.ACK.WECHAT_INBOUND.interaction-inbound.1.2.3.4.5", False),
    ("ops", "pub", "$JS.API.CONSUMER.DELETE.WECHAT_INBOUND.interaction-inbound", False),
    ("ops", "pub", "$JS.API.STREAM.CREATE.DEADLETTER", False),
    ("ops", "pub", "$JS.API.STREAM.UPDATE.DEADLETTER", False),
    ("ops", "pub", "$JS.API.STREAM.DELETE.DEADLETTER", False),
    ("ops", "pub", "$JS.API.STREAM.PURGE.DEADLETTER", False),
    ("ops", "pub", "$JS.API.STREAM.DELETE.WECHAT_INBOUND", False),
    ("ops", "pub", "$JS.API.STREAM.PURGE.CONTENT", False),
    ("ops", "pub", "$JS.API.STREAM.MSG.DELETE.INTERACTION", False),
    ("ops", "sub", "_INBOX.>", False),
    ("ops", "sub", "_INBOX_interaction-svc.>", False),
    ("ops", "sub", "wechat.inbound.>", False),
    ("ops", "sub", "wechat.reply.*", False),
]

VARIABLE = re.compile(r"^<<\s+\$(\w+)\s+>>$")

REPO = VALUES.parents[3]
SERVICES = ("gateway", "interaction-svc", "content-svc", "stats-svc")
CONSUMER = re.compile(r'stream:\s*(\w+),\s*durable:\s*"([^"]+)"')
STREAM = re.compile(r'pub const (\w+): StreamSpec = StreamSpec \{\s*name:\s*"([^"]+)"')


def durables():
    """Every (user, stream, durable) the services' code reads with (ConsumerSpec literals):
    a durable added in code and not granted in the values would be refused in production
    only, since tests run without NATS users."""
    streams = dict(STREAM.findall((REPO / "platform" / "src" / "nats.rs").read_text()))
    found = []
    for service in SERVICES:
        for path in sorted((REPO / service / "src").rglob("*.rs")):
            for constant, durable in CONSUMER.findall(path.read_text()):
                found.append((service, streams.get(constant, constant), durable))
    return found


def consumer_probes():
    return [
        probe
        for user, stream, durable in durables()
        for probe in (
            (user, "pub", f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}", True),
            (user, "pub", f"$JS.API.CONSUMER.INFO.{stream}.{durable}", True),
            (user, "pub", f"$JS.ACK.{stream}.{durable}.1.2.3.4.5", True),
        )
    ]


def values():
    return yaml.safe_load(VALUES.read_text())


def users(merge):
    """Every account's users, each checked to read its password from a variable."""
    found = []
    for account in merge["accounts"].values():
        for user in account.get("users", []):
            if not VARIABLE.match(str(user["password"])):
                sys.exit(f"{VALUES}: user {user['user']}: the password must be << $VARIABLE >>")
            found.append(user["user"])
    return found


def secret_of(user):
    """The Secret a user's pods mount its password from (deploy/k8s/base/*.yaml)."""
    return f"govwx-nats-{user}"


def pod_environment(container_env, secret_values):
    """nats-server's environment as the chart's pods get it: `container.env` in key
    order (the chart's `range`), each Secret's value, `$(NAME)` expanded as the kubelet
    does (only a NAME set before)."""
    env = {}
    for name in sorted(container_env):
        value = container_env[name]
        if isinstance(value, str):
            env[name] = re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), value)
        else:
            ref = value["valueFrom"].get("secretKeyRef")
            if ref:
                env[name] = secret_values[ref["name"]]
    return env


def new_secrets(found):
    """A password per user's Secret, each one `openssl rand -hex 24` (docs/operations.md)
    gives now and then: digits, then `e` and a digit, which nats-server reads as a
    number and refuses unless the variable's value is quoted."""
    return {secret_of(user): "5e3" + secrets.token_hex(16) for user in found}


def bytes_of(quantity):
    """A Kubernetes quantity such as `20Gi` or `500Mi`, in bytes."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", str(quantity))
    if not m:
        sys.exit(f"{VALUES}: cannot read the size {quantity!r} (write it like 16Gi)")
    return int(m.group(1)) * 1024 ** ["", "Ki", "Mi", "Gi", "Ti"].index(m.group(2) or "")


def file_store_limit(chart):
    """config.jetstream.fileStore.maxSize, checked to be set and below the PVC's size (the
    chart's default is the PVC's size: a full store would then fill the volume)."""
    store = chart["config"]["jetstream"]["fileStore"]
    limit, volume = store.get("maxSize"), store["pvc"]["size"]
    if limit is None:
        sys.exit(f"{VALUES}: config.jetstream.fileStore.maxSize is unset (it would be the whole {volume} volume)")
    if bytes_of(limit) >= bytes_of(volume):
        sys.exit(f"{VALUES}: fileStore.maxSize {limit} leaves no room on the {volume} volume")
    return limit


def render(merge, port, store, monitor=None, stack_password=None, max_file_store=None):
    """The server configuration, `merge` written as the chart writes it."""
    config = {"host": "127.0.0.1", "port": port, "jetstream": {"store_dir": str(store)}}
    if max_file_store:
        # As the chart's files/config/jetstream.yaml writes it: unquoted.
        config["jetstream"]["max_file_store"] = f"<< {max_file_store} >>"
    if monitor:
        config["http_port"] = monitor
    merge = json.loads(json.dumps(merge))
    if stack_password:
        merge["accounts"][ACCOUNT]["users"].append(
            {"user": STACK_USER, "password": stack_password}
        )
        config["no_auth_user"] = STACK_USER
    config.update(merge)
    text = json.dumps(config, indent=2, ensure_ascii=False)
    return re.sub(r'"<<\s+(.*)\s+>>"', r"\1", text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Refused(Exception):
    pass


class Client:
    """Just enough of the NATS client protocol to log in and try a subject."""

    def __init__(self, port, user, password):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.file = self.sock.makefile("rb")
        self.line()  # INFO
        connect = {"verbose": False, "pedantic": False, "user": user, "pass": password,
                   "protocol": 1, "headers": True, "lang": "python", "version": "0"}
        self.send(f"CONNECT {json.dumps(connect)}\r\nPING\r\n")
        answer = self.line()
        if answer != "PONG":
            raise Refused(answer)
        self.sid = 0

    def send(self, text):
        self.sock.sendall(text.encode())

    def line(self):
        line = self.file.readline().decode().strip()
        if not line:
            raise Refused("connection closed")
        return line

    def allowed(self, op, subject):
        """Whether the server lets this user publish / subscribe to `subject`."""
        if op == "pub":
            self.send(f"PUB {subject} 0\r\n\r\nPING\r\n")
        else:
            self.sid += 1
            self.send(f"SUB {subject} {self.sid}\r\nUNSUB {self.sid}\r\nPING\r\n")
        answer = self.line()
        if answer == "PONG":
            return True
        if "Permissions Violation" in answer:
            self.line()  # PONG
            return False
        raise Refused(answer)

    def close(self):
        self.sock.close()


def check():
    chart = values()
    merge = chart["config"]["merge"]
    max_file_store = file_store_limit(chart)
    found = users(merge)
    passwords = new_secrets(found)
    env = pod_environment(chart["container"]["env"], passwords)
    failures = [
        f"EXPECTED names {user}, who is not in {VALUES.name}"
        for user in sorted({user for user, *_ in EXPECTED} - set(found))
    ]
    with tempfile.TemporaryDirectory(prefix="govwx-nats-check-") as work:
        port = free_port()
        conf = pathlib.Path(work, "nats.conf")
        conf.write_text(render(merge, port, pathlib.Path(work, "js"), max_file_store=max_file_store))
        server = subprocess.Popen(
            ["nats-server", "-c", str(conf)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(100):
                if server.poll() is not None:
                    sys.exit(f"nats-server refused the configuration: {server.stderr.read()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            clients = {}
            for user in found:
                password = passwords[secret_of(user)]
                try:
                    clients[user] = Client(port, user, password)
                except Refused as e:
                    failures.append(f"{user} cannot log in with its Secret's password: {e}")
                try:
                    Client(port, user, "not-" + password).close()
                    failures.append(f"{user} logs in with a wrong password")
                except Refused:
                    pass
            probes = EXPECTED + consumer_probes()
            for user, op, subject, want in probes:
                if user not in clients:
                    continue
                got = clients[user].allowed(op, subject)
                if got != want:
                    verb = "may" if got else "may not"
                    failures.append(f"{user} {verb} {op} {subject}")
            for client in clients.values():
                client.close()
        finally:
            server.terminate()
            server.wait()
    for failure in failures:
        print(f"nats accounts: {failure}", file=sys.stderr)
    if failures:
        sys.exit(1)
    print(
        f"nats accounts: {len(found)} users log in; {len(EXPECTED)} permissions as expected; "
        f"{len(durables())} durables of the services' code granted to their users"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check")
    r = sub.add_parser("render")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--store", required=True)
    r.add_argument("--monitor", type=int)
    r.add_argument("--secrets", required=True)
    args = parser.parse_args()
    if args.command == "check":
        check()
        return
    chart = values()
    merge = chart["config"]["merge"]
    found = users(merge)
    passwords = new_secrets(found)
    env = pod_environment(chart["container"]["env"], passwords)
    stack_password = secrets.token_hex(16)
    lines = [f"server {name} {value}" for name, value in env.items() ]
    lines += [f"user {user} {passwords[secret_of(user)]}" for user in found]
    lines.append(f"user {STACK_USER} {stack_password}")
    pathlib.Path(args.secrets).write_text("\n".join(lines) + "\n")
    print(render(merge, args.port, args.store, args.monitor, stack_password))


if __name__ == "__main__":
    main()
