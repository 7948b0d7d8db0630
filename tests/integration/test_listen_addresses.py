"""Loopback by default: ``nameko run --config config.yaml`` with nothing set
serves the gateway and every process's metrics on this machine only, as read
from the sockets the running processes listen on (the kernel's table under
/proc), not from the configuration. (And the fixtures' ``AUTH=off`` starts
every line they log.)"""
import os
import socket
import subprocess
import sys

from common.config import ROOT
from helpers import config_env, free_port, wait_for

GATEWAY_DEFAULT_PORT = 8000  # config.yaml's WEB_SERVER_ADDRESS when nothing sets it


def listening(pid):
    """``(address, port)`` of every TCP socket process ``pid`` listens on."""
    inodes = set()
    for fd in os.listdir("/proc/{}/fd".format(pid)):
        try:
            target = os.readlink("/proc/{}/fd/{}".format(pid, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with open("/proc/{}/net/{}".format(pid, table)) as rows:
            next(rows)  # the header
            for row in rows:
                fields = row.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    address, port = local.split(":")
                    found.append((address_of(address, family), int(port, 16)))
    return found


def address_of(hex_address, family):
    raw = bytes.fromhex(hex_address)
    # the kernel writes each 32-bit word in host (little-endian) order
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw)


def test_the_gateway_and_the_metrics_listen_on_loopback_when_nothing_is_set(
        mesh_config, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("WEB_SERVER_ADDRESS", "METRICS_ADDRESS")}
    env.update(config_env(mesh_config))
    del env["WEB_SERVER_ADDRESS"]  # config.yaml's default
    metrics_ports = {"gateway": free_port(), "customers": free_port()}
    processes = {}
    try:
        for service, metrics_port in metrics_ports.items():
            log = open(tmp_path / "{}.log".format(service), "ab")
            processes[service] = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable), "nameko"), "run", "--config",
                 os.path.join(ROOT, "config.yaml"), "services." + service],
                cwd=ROOT, env=dict(env, METRICS_PORT=str(metrics_port)),
                stdout=log, stderr=subprocess.STDOUT)
        expected = {"gateway": {GATEWAY_DEFAULT_PORT, metrics_ports["gateway"]},
                    "customers": {metrics_ports["customers"]}}

        def all_listening():
            for service, process in processes.items():
                assert process.poll() is None, "{} exited; see {} (is port {} taken?)".format(
                    service, tmp_path / "{}.log".format(service), GATEWAY_DEFAULT_PORT)
            return all(expected[service] <= {port for _, port in listening(process.pid)}
                       for service, process in processes.items())
        wait_for(all_listening, 30, lambda: "the gateway on {} and the metrics ports: {}".format(
            GATEWAY_DEFAULT_PORT, {service: listening(process.pid)
                                   for service, process in processes.items()}))
        for service, process in processes.items():
            sockets = listening(process.pid)
            assert sockets and all(address == "127.0.0.1" for address, _ in sockets), (
                service, sockets)
        # the fixtures' AUTH=off, on every line each process logged
        for service in processes:
            lines = [line for line in (tmp_path / "{}.log".format(service)).read_text()
                     .splitlines() if " INFO " in line or " WARNING " in line]
            assert lines and all(line.startswith("[AUTH=off, no token is checked")
                                 for line in lines), (service, lines[:5])
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
