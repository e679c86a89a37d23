#!/usr/bin/env bash
# A single-node SLURM with accounting on this machine, for the live cluster checks (nox -s cluster).
#
#   scripts/slurm-local.sh up DIR     install (apt-get, as root) what is missing, write the configs
#                                     into DIR, start munged, MariaDB, slurmdbd, slurmctld and slurmd,
#                                     and wait until the node takes jobs; prints `export SLURM_CONF=...`
#   scripts/slurm-local.sh down DIR   stop every daemon `up` started, by the PIDs it recorded in DIR
#
# Nothing else is touched: the daemons run as root from DIR's configs, state and logs, and the
# MariaDB they use is started on a data folder in DIR (the system's own is left alone).
# Exit codes: 0 done, 2 cannot run here (not root, no apt-get), 1 a daemon did not come up.
set -uo pipefail

what=${1:-}
DIR=${2:-}
if [ -z "$what" ] || [ -z "$DIR" ]; then
    echo "usage: $0 up|down DIR" >&2
    exit 2
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PIDS="$DIR/pids"

stop_all() {
    [ -f "$PIDS" ] || return 0
    # Newest first: slurmd, slurmctld, slurmdbd, MariaDB, munged.
    tac "$PIDS" | while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
            echo "stopped $name ($pid)"
        fi
    done
    rm -f "$PIDS"
}

if [ "$what" = down ]; then
    stop_all
    exit 0
fi
[ "$what" = up ] || { echo "usage: $0 up|down DIR" >&2; exit 2; }

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm-local: needs root (it installs and starts daemons)" >&2
    exit 2
fi
need=()
for pair in slurmctld:slurm-wlm slurmdbd:slurmdbd munged:munge mariadbd:mariadb-server; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair##*:}")
done
if [ "${#need[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 || { echo "slurm-local: no apt-get to install ${need[*]}" >&2; exit 2; }
    echo "installing ${need[*]} (apt-get)"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } \
        >"$DIR/apt.log" 2>&1; then
        echo "slurm-local: apt-get failed (see $DIR/apt.log)" >&2
        exit 1
    fi
fi

stop_all  # a previous `up` in this folder
for user in munge mysql; do
    if ! runuser -u "$user" -- test -x "$DIR"; then
        echo "slurm-local: $DIR is out of the $user user's reach (a private parent folder?): pick a DIR under /var/tmp" >&2
        exit 2
    fi
done
for port in 3307 6817 6818 6819 6917 6918; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "slurm-local: port $port is in use (a SLURM or MariaDB left running? stop it first)" >&2
        exit 1
    fi
done
mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" "$DIR/run" "$DIR/mysql" "$DIR/munge"
: >"$PIDS"

started() {  # started NAME PID
    echo "$1 $2" >>"$PIDS"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "slurm-local: $what did not come up within ${seconds} s (logs in $DIR/log)" >&2
    stop_all
    exit 1
}

# munge at its usual socket, which SLURM's commands use (a running munged is used as it is).
if ! munge -n </dev/null >/dev/null 2>&1; then
    [ -f /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
    mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
    chown munge:munge "$DIR/munge"
    runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/seed"
    wait_for munged 10 test -s "$DIR/munge/munged.pid"
    started munged "$(cat "$DIR/munge/munged.pid")"
    wait_for "munge" 10 bash -c "munge -n </dev/null | unmunge"
fi

# MariaDB on a data folder of its own, with temporary files it can write (not the caller's TMPDIR,
# which nox points at a folder of root's).
mkdir -p "$DIR/mysql/tmp"
chown -R mysql:mysql "$DIR/mysql"
export TMPDIR="$DIR/mysql/tmp"
mariadb-install-db --user=mysql --datadir="$DIR/mysql/data" --auth-root-authentication-method=socket \
    >"$DIR/log/mariadb-install.log" 2>&1 || { echo "slurm-local: mariadb-install-db failed" >&2; stop_all; exit 1; }
DB_SOCKET="$DIR/mysql/mysqld.sock"
mariadbd --user=mysql --datadir="$DIR/mysql/data" --tmpdir="$DIR/mysql/tmp" --socket="$DB_SOCKET" \
    --pid-file="$DIR/mysql/mariadbd.pid" \
    --skip-networking=0 --bind-address=127.0.0.1 --port=3307 --log-error="$DIR/mysql/mariadb.log" &
started mariadbd $!
wait_for MariaDB 30 mariadb --socket="$DB_SOCKET" -e "select 1"
# slurmdbd reaches it over TCP on 127.0.0.1:3307 ("localhost" would mean the system's socket).
mariadb --socket="$DB_SOCKET" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'rnnbench';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

HOST=$(hostname -s)
NODE=$(slurmd -C | head -1)
cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
DebugLevel=info
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3307
StorageUser=slurm
StoragePass=rnnbench
StorageLoc=slurm_acct_db
EOF
chmod 600 "$DIR/slurmdbd.conf"
cat >"$DIR/slurm.conf" <<EOF
ClusterName=rnnbench
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job (at its time limit) waits cred_expire + 1 s before it may start again: 121 s by
# default, 11 s here, so that the time-limit check takes minutes, not a quarter of an hour.
AuthInfo=cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6917
SlurmdPort=6918
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobRequeue=1
MinJobAge=300
# A cancelled job's processes get SIGTERM, then SIGKILL this many seconds later (submitit's jobs
# ignore SIGTERM, waiting for the requeue signal): short, so that a cancelled shard ends at once.
KillWait=2
$NODE State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$DIR/slurm.conf"
slurmdbd
wait_for slurmdbd 20 test -s "$DIR/run/slurmdbd.pid"
started slurmdbd "$(cat "$DIR/run/slurmdbd.pid")"
wait_for "slurmdbd's database" 60 sacctmgr -i list cluster
sacctmgr -i add cluster rnnbench >/dev/null 2>&1 || true
slurmctld
wait_for slurmctld 20 test -s "$DIR/run/slurmctld.pid"
started slurmctld "$(cat "$DIR/run/slurmctld.pid")"
slurmd
wait_for slurmd 20 test -s "$DIR/run/slurmd.pid"
started slurmd "$(cat "$DIR/run/slurmd.pid")"
wait_for "the node" 30 bash -c "sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'"
wait_for "accounting (sacct)" 20 sacct -n
echo "export SLURM_CONF=$SLURM_CONF"
