#!/usr/bin/env bash
# A single-node SLURM cluster on this machine (slurmctld + slurmd on localhost),
# for the SLURM tests and for trying tools/slurm_train.sh / tools/grid.py --slurm
# without a real cluster.
#
# Usage: tools/slurm/setup_local_slurm.sh [start|stop|status]   (default: start)
#
# start  installs Debian's slurm-wlm + munge with apt-get if they are missing,
#        starts munged, writes /etc/slurm/slurm.conf from slurm.conf.template,
#        starts slurmctld and slurmd and waits until the node accepts jobs.
#        Idempotent: when everything already runs it returns in about a second.
# stop   stops the slurmctld / slurmd (and munged) this script started.
# status prints sinfo.
#
# Environment:
#   SLURM_LOCAL_PARTITION  partition name (default: local)
#   SLURM_LOCAL_STATE      state / log folder (default: /var/spool/mmseglt-slurm)
#   SLURM_LOCAL_CPUS       CPUs the node offers (default: nproc)
#
# Exit status: 0 ready; 3 SLURM cannot be installed here (not root, no apt-get,
# or apt-get failed), which tests turn into a skip; 1 any other failure.
set -euo pipefail

ACTION=${1:-start}
HERE="$(cd "$(dirname "$0")" && pwd)"
PARTITION=${SLURM_LOCAL_PARTITION:-local}
STATE=${SLURM_LOCAL_STATE:-/var/spool/mmseglt-slurm}
CPUS=${SLURM_LOCAL_CPUS:-$(nproc)}
CONF=/etc/slurm/slurm.conf
MARKER=MMSEG_LONGTAIL_LOCAL_SLURM
HOST=$(hostname -s)
CTLD_PORT=6817
SLURMD_PORT=6818

log() { echo "[local-slurm] $*"; }
die() { echo "[local-slurm] ERROR: $*" >&2; exit 1; }
cannot_install() { echo "[local-slurm] SLURM unavailable: $*" >&2; exit 3; }

pid_alive() {  # pid_alive PIDFILE
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

node_state() { sinfo -h -n "$HOST" -o '%T' 2>/dev/null | head -n1; }

node_ready() {
  case "$(node_state)" in
    idle*|mixed*|allocated*|completing*) return 0 ;;
    *) return 1 ;;
  esac
}

render_conf() {
  local mem_mb
  # a little below the physical memory, so slurmd never reports "low memory"
  mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  sed -e "s|@HOST@|$HOST|g" -e "s|@CPUS@|$CPUS|g" -e "s|@MEM_MB@|$mem_mb|g" \
      -e "s|@STATE@|$STATE|g" -e "s|@PARTITION@|$PARTITION|g" \
      -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
      "$HERE/slurm.conf.template"
}

install_packages() {
  local missing=0
  for exe in slurmctld slurmd srun sbatch munged; do
    command -v "$exe" >/dev/null 2>&1 || missing=1
  done
  [[ $missing == 0 ]] && return 0
  [[ $(id -u) == 0 ]] || cannot_install "slurm-wlm/munge are not installed and installing them needs root"
  command -v apt-get >/dev/null 2>&1 || cannot_install "slurm-wlm/munge are not installed and there is no apt-get"
  log "installing slurm-wlm and munge with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null; then
    apt-get update -q >/dev/null 2>&1 || true
    apt-get install -y -q --no-install-recommends slurm-wlm munge >/dev/null \
      || cannot_install "apt-get could not install slurm-wlm and munge"
  fi
}

start_munge() {
  munge_ok && return 0
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    mungekey --create --force
  fi
  chown munge:munge /etc/munge/munge.key 2>/dev/null || true
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  log "starting munged"
  if id munge >/dev/null 2>&1 && command -v runuser >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
  for _ in $(seq 50); do munge_ok && return 0; sleep 0.2; done
  die "munged does not answer (munge -n | unmunge)"
}

write_conf() {
  local new
  new=$(render_conf)
  if [[ -f $CONF ]] && ! grep -q "$MARKER" "$CONF"; then
    die "$CONF exists and was not written by this script; refusing to replace a real SLURM configuration"
  fi
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d"
  if [[ ! -f $CONF ]] || [[ "$(cat "$CONF")" != "$new" ]]; then
    log "writing $CONF (partition=$PARTITION, node=$HOST, cpus=$CPUS)"
    printf '%s\n' "$new" > "$CONF"
    CONF_CHANGED=1
  fi
}

stop_daemons() {
  for name in slurmd slurmctld; do
    local pidfile="$STATE/$name.pid"
    if pid_alive "$pidfile"; then
      log "stopping $name"
      kill "$(cat "$pidfile")"
      for _ in $(seq 50); do pid_alive "$pidfile" || break; sleep 0.2; done
    fi
  done
}

start_daemons() {
  if [[ ${CONF_CHANGED:-0} == 1 ]]; then
    stop_daemons
  fi
  if ! pid_alive "$STATE/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld -f "$CONF"
  fi
  for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
  scontrol ping 2>/dev/null | grep -q UP \
    || die "slurmctld does not answer; see $STATE/slurmctld.log"
  if ! pid_alive "$STATE/slurmd.pid"; then
    log "starting slurmd"
    slurmd -f "$CONF"
  fi
}

wait_node() {
  local state
  for i in $(seq 150); do
    node_ready && return 0
    state=$(node_state)
    # a node left DOWN/DRAINED by an earlier run: put it back in service
    if [[ $state == down* || $state == drain* ]] && (( i % 10 == 5 )); then
      scontrol update nodename="$HOST" state=resume 2>/dev/null || true
    fi
    sleep 0.2
  done
  die "node $HOST is not ready (state: $(node_state)); see $STATE/slurmd.log"
}

case "$ACTION" in
  start)
    if command -v sinfo >/dev/null 2>&1 && [[ -f $CONF ]] && grep -q "$MARKER" "$CONF" \
        && [[ "$(cat "$CONF")" == "$(render_conf)" ]] && munge_ok \
        && pid_alive "$STATE/slurmctld.pid" && pid_alive "$STATE/slurmd.pid" && node_ready; then
      log "already running: partition=$PARTITION node=$HOST"
      exit 0
    fi
    install_packages
    [[ $(id -u) == 0 ]] || cannot_install "starting munged, slurmctld and slurmd needs root"
    start_munge
    write_conf
    start_daemons
    wait_node
    log "ready: partition=$PARTITION node=$HOST cpus=$CPUS (logs in $STATE)"
    ;;
  stop)
    stop_daemons
    if [[ -f /run/munge/munged.pid ]] && pid_alive /run/munge/munged.pid; then
      log "stopping munged"
      kill "$(cat /run/munge/munged.pid)"
    fi
    ;;
  status)
    command -v sinfo >/dev/null 2>&1 || { echo "SLURM is not installed"; exit 1; }
    sinfo
    ;;
  *)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac
