// Validates deploy/k8s/*.yaml offline: every document against the Kubernetes API schema (the
// kubernetes-models package), then what the schema cannot know: the probes use the admin port,
// the grace period outlasts the drain, the Service, HPA and ConfigMap point at what exists.
// Usage: node validate.mjs MANIFEST_DIR IMAGE_CONFIG   (exit 1 and one line per problem on failure)
import fs from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

const [dir, imageConfig] = process.argv.slice(2);
if (!dir || !imageConfig) {
    console.error("usage: node validate.mjs MANIFEST_DIR IMAGE_CONFIG");
    process.exit(2);
}
const problems = [];
const fail = (where, msg) => problems.push(`${where}: ${msg}`);

// Load and schema-check every document.
const objects = [];
for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    const text = fs.readFileSync(path.join(dir, file), "utf8");
    for (const doc of parseAllDocuments(text)) {
        if (doc.errors.length) {
            doc.errors.forEach((e) => fail(file, `YAML: ${e.message}`));
            continue;
        }
        const obj = doc.toJS();
        if (obj === null) continue;
        const where = `${file} ${obj.kind}/${obj.metadata?.name}`;
        let mod;
        try {
            mod = await import(`kubernetes-models/${obj.apiVersion}`);
        } catch {
            fail(where, `unknown apiVersion ${obj.apiVersion}`);
            continue;
        }
        const Model = mod[obj.kind];
        if (!Model) {
            fail(where, `${obj.apiVersion} has no kind ${obj.kind}`);
            continue;
        }
        try {
            new Model(obj).validate();
        } catch (e) {
            fail(where, `schema: ${e.message}`);
        }
        objects.push({ file, where, obj });
    }
}
const find = (kind) => objects.filter((o) => o.obj.kind === kind);
const one = (kind) => {
    const all = find(kind);
    if (all.length !== 1) fail(dir, `expected one ${kind}, found ${all.length}`);
    return all[0];
};

const dep = one("Deployment");
const svc = one("Service");
const hpa = one("HorizontalPodAutoscaler");
const cm = one("ConfigMap");

if (dep) {
    const w = dep.where;
    const pod = dep.obj.spec.template;
    const labels = pod.metadata?.labels ?? {};
    const sel = dep.obj.spec.selector?.matchLabels ?? {};
    for (const [k, v] of Object.entries(sel))
        if (labels[k] !== v) fail(w, `selector ${k}=${v} does not match the pod template's labels`);

    const c = pod.spec.containers.find((x) => x.name === "weft");
    if (!c) fail(w, "no container named weft");
    const ports = Object.fromEntries((c?.ports ?? []).map((p) => [p.name, p.containerPort]));
    if (ports.http !== 8080 || ports.admin !== 9090)
        fail(w, `expected ports http=8080 and admin=9090, found ${JSON.stringify(ports)}`);
    const probePort = (p) => (typeof p === "string" ? ports[p] : p);
    for (const [probe, wantPath] of [["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
        const g = c?.[probe]?.httpGet;
        if (!g) fail(w, `${probe} is not an httpGet probe`);
        else {
            if (g.path !== wantPath) fail(w, `${probe} path ${g.path}, expected ${wantPath}`);
            if (probePort(g.port) !== 9090) fail(w, `${probe} must use the admin port 9090, not ${g.port}`);
        }
    }
    if (!c?.resources?.requests?.cpu || !c?.resources?.limits?.memory)
        fail(w, "the container needs CPU requests (the HPA divides by them) and a memory limit");

    const psc = pod.spec.securityContext ?? {};
    const csc = c?.securityContext ?? {};
    if (psc.runAsNonRoot !== true || !(psc.runAsUser > 0)) fail(w, "the pod must run as a non-root uid");
    if (csc.allowPrivilegeEscalation !== false) fail(w, "allowPrivilegeEscalation must be false");
    const sp = psc.seccompProfile ?? csc.seccompProfile;
    if (sp?.type !== "Localhost" || !/weft-io-uring\.json$/.test(sp.localhostProfile ?? ""))
        fail(w, "the seccomp profile must be the Localhost weft-io-uring.json profile");

    const ann = pod.metadata?.annotations ?? {};
    if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== "9090" ||
        ann["prometheus.io/path"] !== "/metrics")
        fail(w, "the pod template needs prometheus.io/scrape, /port=9090 and /path=/metrics annotations");

    // The grace period must cover the preStop pause and the whole drain.
    const toml = cm?.obj.data?.["weft.toml"] ?? "";
    const drain = Number((/^\s*drain_timeout\s*=\s*([0-9.]+)/m.exec(toml) ?? [])[1]);
    if (!(drain > 0)) fail(cm?.where ?? dir, "weft.toml sets no [server] drain_timeout");
    const pre = c?.lifecycle?.preStop?.exec?.command ?? [];
    const preStop = pre[0] === "sleep" ? Number(pre[1]) : 0;
    const grace = pod.spec.terminationGracePeriodSeconds;
    if (!(grace > preStop + drain))
        fail(w, `terminationGracePeriodSeconds ${grace} must exceed preStop ${preStop}s + drain_timeout ${drain}s`);

    const vols = Object.fromEntries((pod.spec.volumes ?? []).map((v) => [v.name, v]));
    const mount = (c?.volumeMounts ?? []).find((m) => m.mountPath === "/etc/weft");
    const cfgName = vols[mount?.name]?.configMap?.name;
    if (!cfgName || cfgName !== cm?.obj.metadata.name)
        fail(w, `/etc/weft must be mounted from the ConfigMap ${cm?.obj.metadata.name}`);
    const cfgArg = (c?.args ?? []).join(" ");
    if (!cfgArg.includes("--config /etc/weft/weft.toml")) fail(w, "args must pass --config /etc/weft/weft.toml");
}

if (svc && dep) {
    const labels = dep.obj.spec.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(svc.obj.spec.selector ?? {}))
        if (labels[k] !== v) fail(svc.where, `selector ${k}=${v} selects no Weft pod`);
    const names = (dep.obj.spec.template.spec.containers[0].ports ?? []).map((p) => p.name);
    for (const p of svc.obj.spec.ports ?? [])
        if (typeof p.targetPort === "string" && !names.includes(p.targetPort))
            fail(svc.where, `targetPort ${p.targetPort} is not a container port name`);
}

if (hpa && dep) {
    const ref = hpa.obj.spec.scaleTargetRef;
    if (ref.kind !== "Deployment" || ref.name !== dep.obj.metadata.name || ref.apiVersion !== "apps/v1")
        fail(hpa.where, "scaleTargetRef does not name the Weft Deployment");
    if (!(hpa.obj.spec.minReplicas >= 2)) fail(hpa.where, "keep at least two replicas for rolling drains");
}

if (cm) {
    const want = fs.readFileSync(imageConfig, "utf8");
    if (cm.obj.data?.["weft.toml"] !== want)
        fail(cm.where, `weft.toml differs from ${path.basename(imageConfig)}, the image's default`);
}

if (problems.length) {
    problems.forEach((p) => console.error(`FAIL ${p}`));
    process.exit(1);
}
console.log(`ok: ${objects.length} objects valid (${objects.map((o) => o.obj.kind).join(", ")})`);
