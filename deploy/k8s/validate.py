#!/usr/bin/env python3
"""Renders every overlay and checks every object an operator would apply.

1. Built-in kinds against the Kubernetes OpenAPI schema of KUBERNETES_VERSION
   (kubernetes-validate, strict: an unknown field is an error).
2. CloudNativePG, Prometheus Operator and Gateway API objects against the CRD schemas
   in schemas/ (openAPIV3Schema of a pinned release, descriptions removed; see
   schemas/README.md), closed like the API server's pruning would make them.
3. Pod Security "restricted" for every pod template, plus this platform's own rules:
   read-only root, no service-account token, a startupProbe, a preStop sleep that fits
   in terminationGracePeriodSeconds, a readiness probe that waits out /readyz's
   database ping, no replicas under an HPA, PDBs that allow drains, every image tagged
   with the overlay's release (and, in prod, pinned by digest), every monitor and rule
   labelled for the Prometheus selectors of docs/operations.md (step 0).
4. Every alert of the PrometheusRule has a runbook section in docs/operations.md.
5. With --rules-out FILE, writes the rule groups as a Prometheus rule file (check.sh
   runs `promtool check rules` on it: every expression parses).

Usage: validate.py [--rules-out FILE] KUBECTL [overlay...]  (run by deploy/k8s/check.sh)
"""

import json
import pathlib
import re
import subprocess
import sys

import jsonschema
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.31.0"
HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# How long /readyz waits for the database (platform/src/admin.rs); a readiness probe
# that gives up sooner turns a slow ping into "not ready" on every replica at once.
READYZ_DB_PING = re.search(
    r"READYZ_DB_PING: Duration = Duration::from_secs\((\d+)\)",
    (ROOT / "platform" / "src" / "admin.rs").read_text(),
)
READYZ_DB_PING_SECONDS = int(READYZ_DB_PING.group(1)) if READYZ_DB_PING else None
# What start-up may wait for before the admin port binds, each its default in seconds
# (platform/src/nats.rs, db.rs): NATS for every process, PostgreSQL and the
# migrations for a service (a container given DATABASE_URL). A startupProbe that gives
# up sooner has the kubelet kill the pod before it logs which wait ran out.
STARTUP_WAITS = {
    var: int(m.group(1)) if m else None
    for var, source in [
        ("NATS_CONNECT_TIMEOUT", "nats.rs"),
        ("DATABASE_CONNECT_TIMEOUT", "db.rs"),
        ("DATABASE_MIGRATION_DEADLINE", "db.rs"),
    ]
    for m in [re.search(
        rf'"{var}", Duration::from_secs\((\d+)\)',
        (ROOT / "platform" / "src" / source).read_text(),
    )]
}
OPTIONAL = [HERE / "optional" / "httproute.yaml"]

# Volume types the restricted profile allows.
RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}


def closed(schema):
    """Treats an object with declared properties as closed (the API server prunes
    unknown fields silently; here a typo must fail)."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


def crd_schemas():
    schemas = {}
    for path in sorted((HERE / "schemas").glob("*.json")):
        doc = json.loads(path.read_text())
        schemas[(doc["apiVersion"], doc["kind"])] = closed(doc["schema"])
    return schemas


def render(kubectl, overlay):
    out = subprocess.run(
        [kubectl, "kustomize", str(overlay)], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def name_of(obj):
    return f"{obj['kind']}/{obj['metadata'].get('name')}"


def check_schema(obj, schemas):
    key = (obj["apiVersion"], obj["kind"])
    if key in schemas:
        validator = jsonschema.Draft7Validator(schemas[key])
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{'/'.join(map(str, e.path))}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key} (add its CRD to schemas/)"]
    return []


def pod_templates(obj):
    if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield obj["spec"]["template"]["spec"]
    elif obj["kind"] == "CronJob":
        yield obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def check_restricted(obj, spec):
    """Pod Security Standards, restricted profile (v1.31), and our additions."""
    problems = []
    pod_sc = spec.get("securityContext", {})
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} uses {sorted(kinds)}")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken is not false")
    # kubelet makes secret files root-owned unless fsGroup gives them the pod's group: a
    # mode without the "other" read bit is then unreadable to a non-root container.
    for volume in spec.get("volumes", []):
        mode = volume.get("secret", {}).get("defaultMode")
        if mode is not None and not mode & 0o004 and pod_sc.get("fsGroup") is None:
            problems.append(
                f"secret volume {volume['name']} (mode {mode:o}) is unreadable without fsGroup"
            )
    for c in spec.get("initContainers", []) + spec["containers"]:
        sc = c.get("securityContext", {})
        where = f"container {c['name']}"
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {caps['add']}")
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            problems.append(f"{where}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runs as uid 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile is {seccomp}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        for port in c.get("ports", []):
            if "hostPort" in port:
                problems.append(f"{where}: hostPort")
        if obj["kind"] == "Deployment":
            problems += check_lifecycle(spec, c, where)
    return problems


def check_lifecycle(spec, c, where):
    problems = []
    if "startupProbe" not in c:
        problems.append(f"{where}: no startupProbe (liveness would kill a slow start)")
    readiness = c.get("readinessProbe")
    if readiness is None:
        problems.append(f"{where}: no readinessProbe")
    elif READYZ_DB_PING_SECONDS is None:
        problems.append("READYZ_DB_PING not found in platform/src/admin.rs")
    elif readiness.get("timeoutSeconds", 1) <= READYZ_DB_PING_SECONDS:
        problems.append(
            f"{where}: readinessProbe timeoutSeconds {readiness.get('timeoutSeconds', 1)} "
            f"does not exceed /readyz's {READYZ_DB_PING_SECONDS}s database ping"
        )
    problems += check_startup_budget(c, where)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    command = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
    if command[:1] == ["/bin/sleep"]:
        sleep = int(command[1])
    if sleep is None:
        problems.append(f"{where}: no preStop sleep (a rollout would refuse connections)")
    elif sleep >= grace:
        problems.append(f"{where}: preStop sleep {sleep}s does not fit in the {grace}s grace")
    return problems


def seconds(duration):
    """`2m`, `90s`, `120` (the services' duration grammar, whole units only)."""
    m = re.fullmatch(r"(\d+)\s*(s|m|h)?", duration.strip())
    if not m:
        return None
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2) or "s"]


def check_startup_budget(c, where):
    probe = c.get("startupProbe")
    if probe is None:
        return []
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    waits = ["NATS_CONNECT_TIMEOUT"]
    if "DATABASE_URL" in env or "DATABASE_URL_FILE" in env:
        waits += ["DATABASE_CONNECT_TIMEOUT", "DATABASE_MIGRATION_DEADLINE"]
    total = 0
    for var in waits:
        value = seconds(env[var]) if env.get(var) else STARTUP_WAITS.get(var)
        if value is None:
            return [f"{where}: cannot tell how long {var} is (its default not found in platform/src)"]
        total += value
    budget = probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    if budget <= total:
        return [
            f"{where}: startupProbe gives up after {budget}s, but start-up may wait "
            f"{total}s ({' + '.join(waits)}): the pod is killed before it says why"
        ]
    return []


def check_objects(objs):
    problems = []
    hpa_targets = {
        o["spec"]["scaleTargetRef"]["name"]
        for o in objs
        if o["kind"] == "HorizontalPodAutoscaler"
    }
    replicas = {}
    for o in objs:
        if o["kind"] == "Deployment":
            replicas[o["metadata"]["name"]] = o["spec"].get("replicas", 1)
            if o["metadata"]["name"] in hpa_targets and "replicas" in o["spec"]:
                problems.append(f"{name_of(o)}: replicas set although an HPA scales it")
        # A Job's name becomes its pods' job-name label: a DNS label of at most 63
        # characters, so the release in it must be lowercase letters, digits, '-' and '.'.
        if o["kind"] == "Job" and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?", o["metadata"]["name"]):
            problems.append(f"{name_of(o)}: not a valid Job name (check the overlay's release)")
    problems += check_images(objs)
    for o in objs:
        # base's placeholder host means the overlay forgot its Ingress patch (and the
        # service hall's links, which follow the host, point nowhere).
        if o["kind"] == "Ingress" and any(r.get("host") == BASE_HOST for r in o["spec"].get("rules", [])):
            problems.append(f"{name_of(o)}: still base's placeholder host {BASE_HOST} (patch it in the overlay)")
    for o in objs:
        if o["kind"] in ("ServiceMonitor", "PodMonitor", "PrometheusRule") and (
            o["metadata"].get("labels", {}).get("govwx.example/monitoring") != "true"
        ):
            problems.append(f"{name_of(o)}: no govwx.example/monitoring=true (Prometheus would not load it)")
    problems += check_wechat_api_side(objs)
    for o in objs:
        if o["kind"] != "PodDisruptionBudget":
            continue
        spec = o["spec"]
        target = o["spec"]["selector"]["matchLabels"].get("app")
        if "minAvailable" in spec and spec["minAvailable"] >= replicas.get(target, 1):
            problems.append(f"{name_of(o)}: minAvailable blocks every node drain")
        if spec.get("maxUnavailable") == 0:
            problems.append(f"{name_of(o)}: maxUnavailable 0 blocks every node drain")
    return problems


BASE_HOST = "wechat.example.invalid"
IMAGE = re.compile(r"(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]*))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?")


def check_images(objs, pinned=None):
    """Every image of ours carries the overlay's release as its tag (the release also
    names the migration Jobs, so the two cannot drift apart); a production overlay
    (one with a NATS_REPLICAS of 3, i.e. prod) also pins it by digest."""
    release = next(
        (o["data"]["release"] for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "govwx-release"),
        None,
    )
    if pinned is None:
        pinned = any(
            o["kind"] == "ConfigMap" and o["metadata"]["name"] == "govwx-common" and o["data"].get("NATS_REPLICAS") == "3"
            for o in objs
        )
    problems = []
    for o in objs:
        for spec in pod_templates(o):
            for c in spec.get("initContainers", []) + spec["containers"]:
                image = IMAGE.fullmatch(c["image"])
                if image is None or not image["name"].endswith("govwx"):
                    continue
                if image["tag"] is None:
                    problems.append(f"{name_of(o)}: image {c['image']} without a tag")
                elif release is not None and image["tag"] != release:
                    problems.append(f"{name_of(o)}: image tag {image['tag']} is not the release {release}")
                if pinned and image["digest"] is None:
                    problems.append(f"{name_of(o)}: image {c['image']} not pinned by digest (@sha256:…)")
    return problems


def check_wechat_api_side(objs):
    """Every service but the gateway that reads the accounts' settings calls WeChat's
    API with their AppSecrets: it must mount them and be let out to WeChat."""
    egress = set()
    for o in objs:
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("wechat-api-egress"):
            for expr in o["spec"]["podSelector"].get("matchExpressions", []):
                if expr["key"] == "app" and expr["operator"] == "In":
                    egress.update(expr["values"])
    problems = []
    for o in objs:
        if o["kind"] != "Deployment" or o["metadata"]["name"].endswith("gateway"):
            continue
        app = o["spec"]["template"]["metadata"]["labels"].get("app")
        spec = o["spec"]["template"]["spec"]
        for c in spec["containers"]:
            sources = [e.get("configMapRef", {}).get("name", "") for e in c.get("envFrom", [])]
            if not any("wechat-accounts" in name for name in sources):
                continue
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if "/secrets/wechat" not in mounts:
                problems.append(f"{name_of(o)}: reads the WeChat accounts but does not mount their AppSecrets at /secrets/wechat")
            if app not in egress:
                problems.append(f"{name_of(o)}: reads the WeChat accounts but wechat-api-egress does not let it out")
    return problems


def check_routes_admitted(objs, context):
    """An HTTPRoute's traffic comes from its Gateway's namespace: behind the namespace's
    default-deny, each backend's pods need a NetworkPolicy that admits it there.
    `context` holds the Services and Deployments the route points at."""
    services = {o["metadata"]["name"]: o for o in context if o["kind"] == "Service"}
    pods = {}
    for o in context:
        if o["kind"] == "Deployment":
            labels = o["spec"]["template"]["metadata"]["labels"]
            ports = {
                p["name"]: p["containerPort"]
                for c in o["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])
                if "name" in p
            }
            pods[labels.get("app")] = ports
    policies = [o for o in objs + context if o["kind"] == "NetworkPolicy"]
    problems = []
    for o in objs:
        if o["kind"] != "HTTPRoute":
            continue
        sources = {ref.get("namespace") for ref in o["spec"].get("parentRefs", [])}
        for rule in o["spec"].get("rules", []):
            for ref in rule.get("backendRefs", []):
                service = services.get(ref["name"])
                if service is None:
                    problems.append(f"{name_of(o)}: backend {ref['name']} is no Service of the platform")
                    continue
                app = service["spec"]["selector"].get("app")
                target = next(
                    (p.get("targetPort", p["port"]) for p in service["spec"]["ports"] if p["port"] == ref.get("port")),
                    None,
                )
                port = pods.get(app, {}).get(target, target)
                for source in sources:
                    if not any(admits(policy, app, source, port) for policy in policies):
                        problems.append(
                            f"{name_of(o)}: no NetworkPolicy admits namespace {source} to {app} port {port}"
                        )
    return problems


def admits(policy, app, namespace, port):
    spec = policy["spec"]
    if spec["podSelector"].get("matchLabels", {}).get("app") != app:
        return False
    for rule in spec.get("ingress", []):
        ports = {p.get("port") for p in rule.get("ports", [])}
        if ports and port not in ports:
            continue
        for peer in rule.get("from", []):
            selector = peer.get("namespaceSelector", {}).get("matchLabels", {})
            if selector.get("kubernetes.io/metadata.name") == namespace and "podSelector" not in peer:
                return True
    return False


def check_runbooks(objs):
    docs = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in docs.splitlines()
        if line.startswith("#")
    }
    problems = []
    for o in objs:
        if o["kind"] != "PrometheusRule":
            continue
        for group in o["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and rule["alert"].lower() not in anchors:
                    problems.append(f"alert {rule['alert']} has no runbook section in docs/operations.md")
    return problems


def main():
    args = sys.argv[1:]
    rules_out = None
    if "--rules-out" in args:
        at = args.index("--rules-out")
        rules_out = pathlib.Path(args[at + 1])
        del args[at : at + 2]
    kubectl = args[0]
    overlays = [pathlib.Path(p) for p in args[1:]] or sorted((HERE / "overlays").iterdir())
    schemas = crd_schemas()
    failed = False
    context = []
    for source in overlays + OPTIONAL:
        if source.is_dir():
            objs = render(kubectl, source)
            context = context or objs
        else:
            objs = [d for d in yaml.safe_load_all(source.read_text()) if d]
        problems = check_routes_admitted(objs, context if not source.is_dir() else objs)
        for o in objs:
            problems += [f"{name_of(o)}: {p}" for p in check_schema(o, schemas)]
            for spec in pod_templates(o):
                problems += [f"{name_of(o)}: {p}" for p in check_restricted(o, spec)]
        problems += check_objects(objs) + check_runbooks(objs)
        if rules_out is not None and any(o["kind"] == "PrometheusRule" for o in objs):
            # The rule groups as a Prometheus rule file, for `promtool check rules`.
            groups = [g for o in objs if o["kind"] == "PrometheusRule" for g in o["spec"]["groups"]]
            rules_out.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        label = source.relative_to(ROOT)
        if problems:
            failed = True
            print(f"[k8s] {label}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  - {p}")
        else:
            print(f"[k8s] {label}: {len(objs)} objects valid (Kubernetes {KUBERNETES_VERSION}, restricted)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
