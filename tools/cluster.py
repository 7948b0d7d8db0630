"""``make cluster``: three RabbitMQ nodes on this machine, joined in one cluster.

    make cluster          # python -m tools.cluster start
    make cluster-stop     # python -m tools.cluster stop

It prints the two lines a user needs, then ``AMQP_URI=... RABBITMQ_MANAGEMENT=...
QUEUE_TYPE=quorum make
run`` runs the mesh on the cluster:

    AMQP_URI='pyamqp://guest:guest@127.0.0.1:5681/;pyamqp://...:5682/;pyamqp://...:5683/'
    RABBITMQ_MANAGEMENT=http://guest:guest@127.0.0.1:15681

Node ``n`` (1, 2, 3) is ``billing-mesh-<n>@localhost``: AMQP on
``base_port + n - 1`` (5681...), its management API on ``10000`` more
(15681...), Erlang distribution on ``20000`` more (25681...); its data, logs and
configuration in ``var/cluster/node<n>/``. They are the Debian package's
``rabbitmq-server`` (``scripts/ensure-rabbitmq.sh`` installs it), run as the
calling user with an Erlang cookie of their own (``var/cluster/.erlang.cookie``),
beside any RabbitMQ the machine runs already. ``cluster_partition_handling``
is ``pause_minority``: a node cut off from the other two stops serving until it
sees them again (RabbitMQ's advice for three nodes), so no client is served by
a minority.

The integration tests and ``make bench-cluster`` start their own
(``Cluster(folder, free_base_port(), name=...)``); ``isolated=True`` puts each
node in a network namespace of its own (``NodeNetwork``), so that a test can
cut one off from the others.
"""
import argparse
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

import requests

from common.config import ROOT
from tools.net import answers

RABBITMQ_BIN = "/usr/lib/rabbitmq/bin"
NODES = 3
NAME = "billing-mesh"
BASE_PORT = 5681
MANAGEMENT_OFFSET = 10_000
DISTRIBUTION_OFFSET = 20_000
FOLDER = os.path.join(ROOT, "var", "cluster")
START_TIMEOUT_S = 120


class ClusterError(RuntimeError):
    pass


class Node:
    """One RabbitMQ node of the cluster: its name, ports and folder."""

    def __init__(self, cluster, number):
        self.cluster = cluster
        self.number = number
        self.port = cluster.base_port + number - 1
        network = cluster.network
        # on the machine's loopback (short names), or in a network namespace of
        # its own: clients reach it at ``host``, the other nodes at ``peer_host``
        self.netns = network.netns(number) if network else None
        self.host = network.client_address(number) if network else "127.0.0.1"
        self.peer_host = network.peer_address(number) if network else "localhost"
        self.name = "{}-{}@{}".format(cluster.name, number, self.peer_host)
        self.management_port = self.port + MANAGEMENT_OFFSET
        self.distribution_port = self.port + DISTRIBUTION_OFFSET
        self.folder = os.path.join(cluster.folder, "node{}".format(number))
        self.process = None

    @property
    def amqp_uri(self):
        return "pyamqp://guest:guest@{}:{}/".format(self.host, self.port)

    @property
    def management_url(self):
        return "http://guest:guest@{}:{}".format(self.host, self.management_port)

    def command(self, *argv):
        """``argv`` run in the node's network namespace, if it has one."""
        return (["ip", "netns", "exec", self.netns] if self.netns else []) + list(argv)

    def env(self):
        """The environment of the node's scripts: its own names, ports and
        folders, none of the machine's RabbitMQ settings (``/etc/rabbitmq``)."""
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("RABBITMQ_", "AMQP_"))}
        env.update(
            HOME=self.cluster.folder,  # the cluster's .erlang.cookie
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS=self.host,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.distribution_port),
            RABBITMQ_CONF_ENV_FILE=os.path.join(self.folder, "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.folder, "rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(self.folder, "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.folder, "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=os.path.join(self.folder, "data"),
            RABBITMQ_LOG_BASE=os.path.join(self.folder, "log"),
            RABBITMQ_PID_FILE=os.path.join(self.folder, "rabbitmq.pid"),
        )
        if self.netns:
            env["RABBITMQ_USE_LONGNAME"] = "true"  # named by its address
            env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel net_setuptime {}".format(
                self.cluster.network.setuptime)
        else:
            env["ERL_EPMD_ADDRESS"] = "127.0.0.1"
        return env

    def write_configuration(self):
        os.makedirs(os.path.join(self.folder, "log"), exist_ok=True)
        with open(os.path.join(self.folder, "rabbitmq.conf"), "w") as handle:
            handle.write("\n".join([
                "listeners.tcp.1 = {}:{}".format(self.host, self.port),
                "management.tcp.ip = {}".format(self.host),
                "management.tcp.port = {}".format(self.management_port),
                "cluster_partition_handling = pause_minority",
                # a partition is noticed within about this many seconds (RabbitMQ's
                # default is 60: a partition test on that scale would take minutes)
                "net_ticktime = {}".format(self.cluster.network.ticktime)
                if self.cluster.network else "",
                # guest may log in from the machine's namespaces' private
                # addresses, not only from loopback (the tests' isolated nodes)
                "loopback_users = none" if self.cluster.network else "",
                "",
            ]))
        with open(os.path.join(self.folder, "advanced.config"), "w") as handle:
            # Quorum queues' failure detector (aten) polls every 5 s in RabbitMQ, a
            # leader cut off by the network (its node alive, so no monitor fires)
            # being noticed by it: every second here, like net_ticktime above, for
            # the isolated cluster only. Newer RabbitMQ has
            # raft.adaptive_failure_detector.poll_interval in rabbitmq.conf.
            handle.write("[{{aten, [{{poll_interval, {}}}]}}].\n".format(
                self.cluster.network.failure_poll_ms) if self.cluster.network else "[].\n")
        with open(os.path.join(self.folder, "enabled_plugins"), "w") as handle:
            handle.write("[rabbitmq_management].\n")
        with open(os.path.join(self.folder, "rabbitmq-env.conf"), "w") as handle:
            handle.write("# this node's settings come from tools/cluster.py's environment\n")

    def start(self):
        """Start the node's Erlang VM (returns at once; ``wait_started``)."""
        self.write_configuration()
        output = open(os.path.join(self.folder, "log", "server.out"), "ab")
        self.process = subprocess.Popen(
            self.command(os.path.join(RABBITMQ_BIN, "rabbitmq-server")), env=self.env(),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def ctl(self, *args, timeout=60, check=True):
        """``rabbitmqctl -n <node> <args>``; its output."""
        done = subprocess.run(self.command(os.path.join(RABBITMQ_BIN, "rabbitmqctl"), "-n",
                                           self.name, *args),
                              env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise ClusterError("rabbitmqctl -n {} {} failed: {}".format(
                self.name, " ".join(args), (done.stderr or done.stdout).strip()[-600:]))
        return done.stdout

    def serving(self):
        return answers(self.host, self.port, timeout=0.5)

    def vm_running(self):
        """Its pid file names a live Erlang VM of this cluster (its command line
        has the cluster's folder as ``-home``: a pid reused since is not it)."""
        pid = self.pid()
        try:
            with open("/proc/{}/cmdline".format(pid), "rb") as handle:
                argv = handle.read().split(b"\0")
        except (OSError, TypeError):
            return False
        return b"-home" in argv and self.cluster.folder.encode() in argv

    def alive(self):
        """Its VM runs and its AMQP port answers. (A port alone can mislead:
        an address with no route here may be answered by whatever the default
        route leads to.)"""
        return self.vm_running() and self.serving()

    def wait_started(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ClusterError("{} exited with {}; see {}:\n{}".format(
                    self.name, self.process.returncode, os.path.join(self.folder, "log"),
                    self.last_output()))
            if self.serving():
                self.ctl("await_startup", timeout=max(5, deadline - time.monotonic()))
                return
            time.sleep(0.2)
        raise ClusterError("{} did not open {}:{} within {:.0f} s; see {}".format(
            self.name, self.host, self.port, timeout, os.path.join(self.folder, "log")))

    def last_output(self, lines=15):
        try:
            with open(os.path.join(self.folder, "log", "server.out"), errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def pid(self):
        try:
            with open(os.path.join(self.folder, "rabbitmq.pid")) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL the node's VM (a crash, a power cut of that machine)."""
        if self.vm_running():
            try:
                os.killpg(os.getpgid(self.pid()), signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self):
        if not self.vm_running():
            return
        try:
            self.ctl("stop", timeout=60)
        except (ClusterError, subprocess.TimeoutExpired):
            self.kill()
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class Cluster:
    """``NODES`` RabbitMQ nodes in ``folder``, AMQP on ``base_port`` and up,
    named ``<name>-<n>@localhost`` (names are unique on a machine: the tests'
    clusters take their own)."""

    def __init__(self, folder=FOLDER, base_port=BASE_PORT, size=NODES, name=NAME,
                 isolated=False):
        self.folder = os.path.abspath(folder)
        self.base_port = base_port
        self.name = name  # the nodes are <name>-1@localhost, ...
        # isolated: each node in a network namespace of its own (root, ip netns),
        # so that a test can cut one off from the others (partition) and heal it
        self.network = NodeNetwork(base_port, size) if isolated else None
        self.nodes = [Node(self, number) for number in range(1, size + 1)]

    @property
    def amqp_uri(self):
        """Every node, in order, as kombu takes a list: ``uri;uri;uri``."""
        return ";".join(node.amqp_uri for node in self.nodes)

    @property
    def management_url(self):
        return self.nodes[0].management_url

    def leader_node(self, queue, vhost="/"):
        """The node holding quorum queue ``queue``'s leader, as the first node's
        management API says."""
        answer = requests.get("{}/api/queues/{}/{}".format(
            self.management_url, urllib.parse.quote(vhost, safe=""),
            urllib.parse.quote(queue, safe="")), timeout=10)
        answer.raise_for_status()
        leader = answer.json()["leader"]
        return next(node for node in self.nodes if node.name == leader)

    def running(self):
        return all(node.alive() for node in self.nodes)

    def start(self):
        """Start every node and join them; nothing to do if they all serve."""
        if self.running():
            return
        check_installed()
        self._write_cookie()
        if self.network is not None:
            self.network.create()
        for node in self.nodes:
            if not node.alive():
                node.start()
        for node in self.nodes:
            node.wait_started()
        first = self.nodes[0]
        for node in self.nodes[1:]:
            if first.name in node.ctl("cluster_status", "--formatter", "json"):
                continue  # joined before (a cluster started again)
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_started()

    def stop(self):
        for node in reversed(self.nodes):
            node.stop()

    def remove(self):
        self.stop()
        if self.network is not None:
            self.network.remove()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_cookie(self):
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, ".erlang.cookie")
        if not os.path.exists(path):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o400), "w") as handle:
                handle.write(secrets.token_hex(20).upper())


class NodeNetwork:
    """Network namespaces for an isolated cluster (``ip netns``, root only).

    Node ``n`` lives in namespace ``bm<tag>n<n>`` with two links to the
    machine: a client link (a veth pair, ``10.231.<k>.<4n+2>`` inside) where
    the mesh reaches its AMQP and management ports, and a cluster link (a veth
    on a bridge shared by the nodes, ``10.232.<k>.<n>`` inside) that carries
    Erlang distribution between nodes. ``cut(n)`` takes node ``n``'s cluster
    link down: the node is partitioned from the other two while clients still
    reach it (with ``pause_minority`` it stops serving them); ``heal(n)``
    brings it back."""

    ticktime = 2  # net_ticktime: a cut is noticed within 1.5 to 2.5 s
    # net_setuptime (Erlang's default 7 s): how long a node tries to connect to
    # another before giving up. A queue client that still named the cut-off
    # node as its queue's leader (a channel opened during the election) had
    # its message wait on that attempt, and the call after the failover with it
    setuptime = 2
    failure_poll_ms = 1000  # quorum queues' failure detector (aten), RabbitMQ's default 5000

    def __init__(self, base_port, size):
        self.tag = base_port  # unique per cluster: its ports are
        self.k = base_port % 250
        self.size = size

    def netns(self, number):
        return "bm{}n{}".format(self.tag, number)

    def client_address(self, number):
        return "10.231.{}.{}".format(self.k, 4 * number + 2)

    def peer_address(self, number):
        return "10.232.{}.{}".format(self.k, number)

    def _bridge(self):
        return "bmb{}".format(self.tag)

    def _client_link(self, number):
        return "bmc{}{}".format(self.tag, number)

    def _cluster_link(self, number):
        return "bmd{}{}".format(self.tag, number)

    def create(self):
        if os.geteuid() != 0:
            raise ClusterError("an isolated cluster needs root (ip netns)")
        self.remove()  # what a run killed half way left
        bridge = self._bridge()
        ip("link", "add", bridge, "type", "bridge")
        ip("link", "set", bridge, "up")
        for number in range(1, self.size + 1):
            netns = self.netns(number)
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
            client = self._client_link(number)
            ip("link", "add", client, "type", "veth", "peer", "name", "client", "netns", netns)
            ip("addr", "add", "10.231.{}.{}/30".format(self.k, 4 * number + 1), "dev", client)
            ip("link", "set", client, "up")
            ip("-n", netns, "addr", "add", self.client_address(number) + "/30", "dev", "client")
            ip("-n", netns, "link", "set", "client", "up")
            link = self._cluster_link(number)
            ip("link", "add", link, "type", "veth", "peer", "name", "cluster", "netns", netns)
            ip("link", "set", link, "master", bridge, "up")
            ip("-n", netns, "addr", "add", self.peer_address(number) + "/24", "dev", "cluster")
            ip("-n", netns, "link", "set", "cluster", "up")

    def cut(self, number):
        ip("link", "set", self._cluster_link(number), "down")

    def heal(self, number):
        ip("link", "set", self._cluster_link(number), "up")

    def remove(self):
        for number in range(1, self.size + 1):
            netns = self.netns(number)
            # the epmd daemon each node started in its namespace outlives the
            # node and would keep the namespace, and its links, alive unnamed
            pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True,
                                  text=True, timeout=30).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            ip("netns", "del", netns, check=False)
            for link in (self._client_link(number), self._cluster_link(number)):
                ip("link", "del", link, check=False)  # a veth pair goes with either end
        ip("link", "del", self._bridge(), check=False)


def ip(*args, check=True):
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise ClusterError("ip {} failed: {}".format(" ".join(args), done.stderr.strip()))


def port_free(port):
    """Nothing listens on 127.0.0.1:``port`` and nothing holds it as its own
    end (a node fails to start on a port a client connection took)."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def free_base_port(low=10000, high=12000):
    """A first AMQP port whose cluster's ports (AMQP, management, distribution)
    are all free, chosen below the kernel's ephemeral range (32768 and up)
    where no client connection takes one meanwhile: the tests' and benchmarks'
    clusters."""
    for _ in range(200):
        base = random.randrange(low, high)
        if all(port_free(base + n + offset) for n in range(NODES)
               for offset in (0, MANAGEMENT_OFFSET, DISTRIBUTION_OFFSET)):
            return base
    raise ClusterError("no free ports for a cluster between {} and {}".format(low, high))


def check_installed():
    if not os.path.exists(os.path.join(RABBITMQ_BIN, "rabbitmq-server")):
        raise ClusterError("RabbitMQ is not installed: run `bash scripts/ensure-rabbitmq.sh` "
                           "(Debian's rabbitmq-server), then make cluster again")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Three local RabbitMQ nodes in one cluster.")
    parser.add_argument("action", choices=("start", "stop", "remove"))
    parser.add_argument("--base-port", type=int, default=BASE_PORT,
                        help="AMQP port of the first node (default %(default)s)")
    parser.add_argument("--folder", default=FOLDER, help="data and logs (default var/cluster)")
    args = parser.parse_args(argv)
    cluster = Cluster(args.folder, args.base_port)
    try:
        if args.action == "start":
            cluster.start()
            print("RabbitMQ cluster of {} nodes is up ({}); data in {}".format(
                len(cluster.nodes), ", ".join(node.name for node in cluster.nodes),
                cluster.folder), file=sys.stderr)
            print("AMQP_URI='{}'".format(cluster.amqp_uri))
            print("RABBITMQ_MANAGEMENT={}".format(cluster.management_url))
        elif args.action == "stop":
            cluster.stop()
        else:
            cluster.remove()
    except ClusterError as exc:
        print("make cluster: {}".format(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
