#!/usr/bin/env bash
# The real cluster test of `backdoor-lab grid`, outside the default test run (scripts/test.sh):
#   1. a one-node Slurm cluster on this machine runs deploy/slurm/grid.sbatch as a 4-task job array;
#   2. the Kubernetes manifest deploy/k8s/grid-job.yaml is validated against the API schema offline,
#      and its container's command line runs here once per completion index;
#   3. both are merged and compared, report by report, with one unsharded `grid run` of the same grid.
# Sharding must not change a result: only timings may differ.
#
# Usage (as root, on Debian 12; idempotent, so run it as often as you like):
#   bash scripts/cluster-test.sh [GRID]
# Environment:
#   BACKDOOR_LAB  the CLI binary (default: ${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}/release/backdoor-lab,
#                 i.e. what `cargo build --release` leaves there)
#   GRID          the grid file (default tests/grids/cluster.toml; an argument wins)
#   K8S_VERSIONS  Kubernetes versions to validate the manifest against (default "1.37.0 1.30.0")
#   CLUSTER_TEST_OVERWRITE=1  replace an /etc/slurm/slurm.conf this script did not write (it is backed up)
#   KEEP=1        keep the temporary folders (their path is printed)
#
# It installs slurm-wlm and munge with apt-get when missing, writes /etc/slurm/slurm.conf for this host,
# and starts munged, slurmctld and slurmd. The daemons are left running afterwards (a second run reuses
# them); stop them with: kill $(cat /run/slurmd.pid) $(cat /run/slurmctld.pid); kill $(cat /run/munge/munged.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

step() { printf '\n==> %s\n' "$*"; }
die() { echo "cluster-test: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || die "run as root: it installs packages and starts the Slurm daemons"
# The CLI takes its shard from these when --shard is absent: inherited ones (this script started inside
# a Slurm array or a pod) would shard the unsharded reference run.
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_COUNT JOB_COMPLETION_INDEX

target="${CARGO_TARGET_DIR:-$HOME/.cache/backdoor-lab/target}"
bin="${BACKDOOR_LAB:-$target/release/backdoor-lab}"
grid="${1:-${GRID:-tests/grids/cluster.toml}}"
shards=4
venv="$HOME/.cache/backdoor-lab/venv"
k8s_versions="${K8S_VERSIONS:-1.37.0 1.30.0}"
# Pinned: the validator ships the API schemas of each Kubernetes version it knows, so the set of
# versions above depends on its release.
validator="kubernetes-validate==1.37.0"
manifest="$repo/deploy/k8s/grid-job.yaml"
sbatch_script="$repo/deploy/slurm/grid.sbatch"
# The jobs run in other working directories: every path they get is absolute.
[[ -x "$bin" ]] || die "no binary at $bin: build it with 'cargo build --release' or set BACKDOOR_LAB"
[[ -f "$grid" ]] || die "no grid file $grid"
bin=$(realpath "$bin")
grid=$(realpath "$grid")
# MNIST ships in the repository; the binary would find it beside the source tree it was built from,
# but a binary built elsewhere would not, so every run gets this folder explicitly.
data="$repo/static/data"

work=$(mktemp -d /tmp/backdoor-lab-cluster.XXXXXX)
# slurmd runs the tasks as root here, but keep the folder readable like any shared results folder.
chmod 755 "$work"
cleanup() {
    if [[ "${KEEP:-}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
t0=$(date +%s)

# ---------------------------------------------------------------------------------------------------
step "Slurm: packages, munge, slurm.conf, daemons"

missing=()
for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# munge authenticates every message between the Slurm commands and daemons. Debian's package creates
# a key on install; create one if it is gone.
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
fi
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    # No systemd in this container: start the daemon by hand, as its own user, with the runtime
    # folder it expects (/run is empty after a reboot).
    install -d -o munge -g munge -m 755 /run/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.2; done
    munge -n | unmunge >/dev/null || die "munged did not start"
fi
echo "munge: up"

host=$(hostname -s)
cpus=$(nproc)
# slurmd refuses a node whose configured memory exceeds what it measures: stay 5 % below.
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
marker="# Written by backdoor-lab scripts/cluster-test.sh: a one-node test cluster."
conf="$marker
# Slurm 22.05 (Debian 12). Rewritten on every run; hand edits are lost.
ClusterName=backdoorlab
SlurmctldHost=$host
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# Without systemd's cgroup delegation here, track a job's processes through /proc and bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are both consumed, so two 1-CPU tasks share this 2-core node as on a real cluster.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# No slurmdbd (it needs MySQL/MariaDB): job records go to a text file that \`sacct -c\` reads.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
# Back to idle by itself after a restart of this machine (a node that went down otherwise stays down).
ReturnToService=2
# No mail on this machine (the default MailProg does not exist, and slurmctld logs an error for it).
MailProg=/bin/true
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP"

daemon_running() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

mkdir -p /etc/slurm
changed=0
if [[ ! -f /etc/slurm/slurm.conf ]] || [[ "$(cat /etc/slurm/slurm.conf)" != "$conf" ]]; then
    if [[ -f /etc/slurm/slurm.conf ]] && ! grep -qxF "$marker" /etc/slurm/slurm.conf; then
        # Someone else's Slurm configuration: do not clobber a real cluster node by accident.
        [[ "${CLUSTER_TEST_OVERWRITE:-}" == 1 ]] ||
            die "/etc/slurm/slurm.conf was not written by this script; set CLUSTER_TEST_OVERWRITE=1 to replace it"
        cp /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.bak.$(date +%s)"
    fi
    printf '%s\n' "$conf" >/etc/slurm/slurm.conf
    changed=1
fi
install -d -o slurm -g slurm /var/spool/slurmctld /var/log/slurm
install -d /var/spool/slurmd
touch /var/log/slurm/jobcomp.log
chown slurm:slurm /var/log/slurm/jobcomp.log

# A changed configuration (new host name, CPUs, memory) needs fresh daemons: `scontrol reconfigure`
# does not apply node definitions. Stop the ones this script started before (found by pid file).
if ((changed)); then
    for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
        if daemon_running "$pidfile"; then
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
    done
fi
daemon_running /run/slurmctld.pid || slurmctld
for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.2; done
scontrol ping | grep -q 'is UP' || die "slurmctld did not come up (see /var/log/slurm/slurmctld.log)"
daemon_running /run/slurmd.pid || slurmd
state=
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$host" -o '%t' 2>/dev/null || true)
    [[ "$state" == idle ]] && break
    # A node marked down or drained earlier (e.g. it vanished while the controller ran) comes back
    # only by hand.
    if [[ "$state" == down* || "$state" == drain* ]]; then
        scontrol update NodeName="$host" State=RESUME || true
    fi
    sleep 1
done
sinfo
[[ "$state" == idle ]] || die "node $host is '$state', not idle (see /var/log/slurm/slurmd.log)"

# ---------------------------------------------------------------------------------------------------
step "Slurm: a job array of $shards tasks (deploy/slurm/grid.sbatch)"

slurm_out="$work/slurm"
mkdir -p "$slurm_out" "$work/slurm-logs"
submitted=$(date +%Y-%m-%dT%H:%M:%S)
# One CPU per task, so two tasks run at once on this 2-core node; 2G fits any test machine. The rest
# is the script's own defaults. GRID, OUT, BACKDOOR_LAB and DATA_DIR reach the tasks through sbatch's
# default --export=ALL.
slurm_ok=1
jid=$(GRID="$grid" OUT="$slurm_out" BACKDOOR_LAB="$bin" DATA_DIR="$data" \
    sbatch --parsable --wait --array=0-$((shards - 1)) --cpus-per-task=1 --mem=2G \
    --chdir="$work" --output="$work/slurm-logs/%x-%A_%a.out" "$sbatch_script") || slurm_ok=0
jid=${jid%%;*}
[[ "$jid" =~ ^[0-9]+$ ]] || die "sbatch gave no job id ('$jid')"
echo "job array $jid finished"

# sacct: without slurmdbd, accounting_storage/none stores nothing and plain `sacct` answers "Slurm
# accounting storage is disabled". jobcomp/filetxt keeps one line per finished job, which `sacct -c`
# reads, but its reader in 22.05 does not know the array fields its writer adds (it warns "Unknown type
# ArrayJobId" on stderr, hidden here) and so lists each task under its raw job id. So: find the tasks'
# raw ids in the jobcomp file, show sacct's view of them, and the id -> array task map beside it.
lines=
for _ in $(seq 30); do
    lines=$(grep -E "ArrayJobId=$jid ArrayTaskId=" /var/log/slurm/jobcomp.log |
        awk -v since="$submitted" '{ for (i = 1; i <= NF; i++) if ($i ~ /^SubmitTime=/) { split($i, a, "="); if (a[2] >= since) print } }' || true)
    (($(grep -c . <<<"$lines") >= shards)) && break
    sleep 1
done
ids=$(sed -E 's/^JobId=([0-9]+) .*/\1/' <<<"$lines" | sort -n | paste -sd, -)
echo "sacct -c -j $ids --format=JobID,JobName%15,State,ExitCode,Elapsed,Start,End"
sacct -c -j "$ids" --format=JobID,JobName%15,State,ExitCode,Elapsed,Start,End 2>/dev/null
echo "raw job id -> array task (from /var/log/slurm/jobcomp.log):"
sed -E 's/^JobId=([0-9]+) .*ArrayJobId=([0-9]+) ArrayTaskId=([0-9]+) .*/  \1 -> \2_\3/' <<<"$lines" | sort -t_ -k2n
good=$(grep -c 'JobState=COMPLETED .*ExitCode=0:0' <<<"$lines" || true)
if ((!slurm_ok || good != shards)); then
    for f in "$work"/slurm-logs/*.out; do echo "--- $f"; cat "$f"; done
    die "the job array did not complete: $good of $shards tasks COMPLETED with exit code 0"
fi
echo "$good of $shards array tasks COMPLETED, exit code 0:0"
echo "--- the log of task 0:"
cat "$work/slurm-logs/backdoor-grid-${jid}_0.out"

# ---------------------------------------------------------------------------------------------------
step "merge the Slurm results, run the grid unsharded, compare"

"$bin" grid merge "$slurm_out" --out "$work/slurm-RESULTS.json" >/dev/null
"$bin" grid run "$grid" --out "$work/local" --data-dir "$data"
"$bin" grid merge "$work/local" --out "$work/local-RESULTS.json"

# Compares two `grid run` folders and their merged results. Equal means: the same report files (and no
# temporary file left behind), each report equal once timings are removed, RESULTS.json equal the same
# way, RESULTS.csv identical and RESULTS.md's table identical. Timings: every key named seconds,
# train_samples_per_second or peak_memory_mb, at any depth (a report's `seconds`, each epoch's
# `seconds`, the merged runs' `seconds`). RESULTS.json's `trainings` counts the models actually
# trained, summed over shards, and differs by design: a shard trains each model its runs need, so a
# model shared by runs of different shards is trained once per shard (4 shards: 8 trainings for the
# grid's 4 models, against 4 unsharded). It is printed, not compared.
compare() {
    python3 - "$@" <<'PY'
import json, os, sys

a_dir, a_res, b_dir, b_res, label = sys.argv[1:6]
TIMING = {"seconds", "train_samples_per_second", "peak_memory_mb"}


def strip(x, drop=TIMING):
    if isinstance(x, dict):
        return {k: strip(v, drop) for k, v in x.items() if k not in drop}
    if isinstance(x, list):
        return [strip(v, drop) for v in x]
    return x


def first_difference(a, b, path="$"):
    if type(a) is not type(b):
        return f"{path}: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'the first' if k in a else 'the second'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {json.dumps(a)[:80]} vs {json.dumps(b)[:80]}"


def files(d):
    # Reports and grid.json at the top; shards/ holds per-shard logs, which differ by design.
    return {n for n in os.listdir(d) if os.path.isfile(os.path.join(d, n))}


problems = []
fa, fb = files(a_dir), files(b_dir)
for name in sorted(fa | fb):
    if name.startswith("."):
        problems.append(f"temporary file left behind: {name} in {a_dir if name in fa else b_dir}")
if fa != fb:
    problems.append(f"report files differ: only in {label}: {sorted(fa - fb)}; only unsharded: {sorted(fb - fa)}")
reports = 0
for name in sorted(fa & fb):
    if not name.endswith(".json") or name.startswith("."):
        continue
    with open(os.path.join(a_dir, name)) as f:
        x = json.load(f)
    with open(os.path.join(b_dir, name)) as f:
        y = json.load(f)
    d = first_difference(strip(x), strip(y))
    if d:
        problems.append(f"{name} differs: {d}")
    reports += name != "grid.json"

with open(a_res) as f:
    ra = json.load(f)
with open(b_res) as f:
    rb = json.load(f)
d = first_difference(strip(ra, TIMING | {"trainings"}), strip(rb, TIMING | {"trainings"}))
if d:
    problems.append(f"RESULTS.json differs: {d}")
if len(ra.get("runs", [])) != reports:
    problems.append(f"RESULTS.json has {len(ra.get('runs', []))} runs for {reports} reports")


def read(path):
    with open(path) as f:
        return f.read()


stem_a, stem_b = a_res[: -len(".json")], b_res[: -len(".json")]
if read(stem_a + ".csv") != read(stem_b + ".csv"):
    problems.append("RESULTS.csv differs")
table = lambda t: [l for l in t.splitlines() if l.startswith("|")]
if table(read(stem_a + ".md")) != table(read(stem_b + ".md")) or not table(read(stem_a + ".md")):
    problems.append("RESULTS.md's table differs (or is empty)")

if problems:
    print(f"{label} vs unsharded: DIFFERENT")
    for p in problems:
        print("  " + p)
    sys.exit(1)
print(
    f"{label} vs unsharded: equal ({reports} reports, RESULTS.json/.csv/.md; "
    f"trainings {ra.get('trainings')} sharded vs {rb.get('trainings')} unsharded, models {ra.get('models')})"
)
PY
}
compare "$slurm_out" "$work/slurm-RESULTS.json" "$work/local" "$work/local-RESULTS.json" "Slurm array"

# ---------------------------------------------------------------------------------------------------
step "Kubernetes: validate deploy/k8s/grid-job.yaml"

# The validator bundles the API's JSON schemas, so it needs no cluster and no network after install.
# It lives in a venv under the cache (the machine's Python stays untouched); PyYAML comes with it.
if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        # Debian's python3 keeps venv's pip bootstrap in a separate package.
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "$validator" pyyaml
fi
echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version)"
for v in $k8s_versions; do
    # --strict: unknown fields (a typo such as completionMod) fail too, as `kubectl apply` would.
    "$venv/bin/kubernetes-validate" --strict -k "$v" "$manifest"
done

step "Kubernetes: the Job's command line, once per completion index"

# Reads the manifest and writes, NUL-separated, the container's environment (KEY=VALUE, to k8s/env) and
# its argv (to k8s/argv), with each volume mount replaced by a local folder: the ConfigMap's mount holds
# its keys, each one a copy of the test grid (its own example grid goes to example-grid/ for `grid plan`);
# the claim's mount is the results folder (k8s/results); an emptyDir is a scratch folder. The binary
# replaces the command's first word. It checks what the CLI cannot: an Indexed Job with --shards equal to
# completions; and prints the completions.
mkdir -p "$work/k8s"
completions=$("$venv/bin/python" - "$manifest" "$work/k8s" "$grid" "$bin" <<'PY'
import math, os, shutil, sys
import yaml

manifest, root, test_grid, binary = sys.argv[1:5]
with open(manifest) as f:
    docs = [d for d in yaml.safe_load_all(f) if d]
jobs = [d for d in docs if d.get("kind") == "Job"]
if len(jobs) != 1:
    sys.exit(f"expected one Job in {manifest}, found {len(jobs)}")
job = jobs[0]
spec, pod = job["spec"], job["spec"]["template"]["spec"]
if spec.get("completionMode") != "Indexed":
    sys.exit("the Job is not an Indexed Job (completionMode: Indexed): pods would get no JOB_COMPLETION_INDEX")
completions = spec.get("completions")
(container,) = pod["containers"]
command = list(container.get("command") or []) + list(container.get("args") or [])
if "--shards" not in command or command[command.index("--shards") + 1] != str(completions):
    sys.exit(f"--shards must equal completions ({completions}): {command}")
if spec.get("parallelism", 1) > completions:
    sys.exit("parallelism above completions")

config_maps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
claims = {d["metadata"]["name"] for d in docs if d.get("kind") == "PersistentVolumeClaim"}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {}
for m in container.get("volumeMounts", []):
    vol = volumes[m["name"]]
    local = os.path.join(root, "mount-" + m["name"])
    os.makedirs(local, exist_ok=True)
    if "configMap" in vol:
        cm = config_maps.get(vol["configMap"]["name"])
        if cm is None:
            sys.exit(f"ConfigMap {vol['configMap']['name']} is not in {manifest}")
        os.makedirs(os.path.join(root, "example-grid"), exist_ok=True)
        for key, text in cm["data"].items():
            shutil.copyfile(test_grid, os.path.join(local, key))
            with open(os.path.join(root, "example-grid", key), "w") as f:
                f.write(text)
    elif "persistentVolumeClaim" in vol:
        name = vol["persistentVolumeClaim"]["claimName"]
        where = "in the manifest" if name in claims else "referenced, not in the manifest"
        print(f"claim {name} ({where}) -> {local}", file=sys.stderr)
        os.symlink(local, os.path.join(root, "results"))
    mounts[m["mountPath"].rstrip("/")] = local


def local_path(arg):
    for path, local in sorted(mounts.items(), key=lambda x: -len(x[0])):
        if arg == path or arg.startswith(path + "/"):
            return local + arg[len(path):]
    return arg


def cpus(q):
    # Kubernetes CPU quantities: "2", "1.5", "500m"; a resourceFieldRef with divisor 1 rounds up.
    q = str(q)
    return math.ceil(int(q[:-1]) / 1000) if q.endswith("m") else math.ceil(float(q))


env = []
for e in container.get("env", []):
    if "value" in e:
        env.append(f"{e['name']}={e['value']}")
    elif "resourceFieldRef" in e.get("valueFrom", {}):
        ref = e["valueFrom"]["resourceFieldRef"]
        kind, res = ref["resource"].split(".")
        env.append(f"{e['name']}={cpus(container['resources'][kind][res])}")
argv = [binary] + [local_path(a) for a in command[1:]]
for name, items in (("env", env), ("argv", argv)):
    with open(os.path.join(root, name), "w") as f:
        f.write("".join(x + "\0" for x in items))
print(completions)
PY
)
mapfile -d '' k8s_env <"$work/k8s/env"
mapfile -d '' argv <"$work/k8s/argv"
k8s_out=$(readlink -f "$work/k8s/results")
echo "the ConfigMap's own grid plans:"
for g in "$work"/k8s/example-grid/*; do "$bin" grid plan "$g" | sed -n 2p; done
echo "env: ${k8s_env[*]:-(none)}"
echo "command: ${argv[*]}"
# All indices at once, as `parallelism: 4` runs the pods: they share the results folder like the pods
# share the claim. BACKDOOR_LAB_DATA is what the image sets (deploy/Dockerfile).
pids=()
for ((i = 0; i < completions; i++)); do
    env "${k8s_env[@]}" JOB_COMPLETION_INDEX="$i" BACKDOOR_LAB_DATA="$data" "${argv[@]}" \
        >"$work/k8s/index-$i.log" 2>&1 &
    pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
        echo "--- index $i failed:"; cat "$work/k8s/index-$i.log"
        failed=1
    fi
done
((!failed)) || die "a completion index failed"
echo "$completions indices finished; index 0 said:"
cat "$work/k8s/index-0.log"
"$bin" grid merge "$k8s_out" --out "$work/k8s-RESULTS.json" >/dev/null
compare "$k8s_out" "$work/k8s-RESULTS.json" "$work/local" "$work/local-RESULTS.json" "Kubernetes indices"

# ---------------------------------------------------------------------------------------------------
step "summary"
runs=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$work/local-RESULTS.json")
echo "grid:        $grid ($runs runs)"
echo "binary:      $bin"
echo "Slurm:       job array $jid, $shards tasks COMPLETED on node $host; merged results equal the unsharded run's"
echo "Kubernetes:  manifest valid for $k8s_versions; $completions indices run locally; results equal"
echo "time:        $(($(date +%s) - t0)) s"
echo "The Slurm daemons (munged, slurmctld, slurmd) are still running; a next run reuses them."
