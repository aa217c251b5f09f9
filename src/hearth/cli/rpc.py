"""`hearth rpc-worker`: lend this machine's memory and CPU to a Hearth elsewhere (llama.cpp's RPC server)."""

from __future__ import annotations

import os
import sys

import click

from hearth.service import rpc_worker as prepare


@click.command("rpc-worker")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="IPv4 address to listen on; other than loopback needs --i-understand-no-auth.")
@click.option("--port", default=50052, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=0, type=int, help="CPU threads for the computations [default: physical cores].")
@click.option("--i-understand-no-auth", "no_auth_understood", is_flag=True,
              help="Listen beyond loopback although the RPC protocol has no authentication or encryption: "
                   "anyone who reaches the port can use this machine (firewall it; docs/rpc.md).")
def rpc_worker(host: str, port: int, threads: int, no_auth_understood: bool) -> None:
    """Serve this machine's CPU and memory to a Hearth that spreads models over RPC workers.

    That Hearth lists this worker in its rpc_workers setting (HEARTH_RPC_WORKERS=HOST:PORT, or
    `hearth serve --rpc-workers HOST:PORT`). One Hearth model at a time; Ctrl-C stops the worker.
    """
    worker = prepare(host, port, threads, no_auth_understood=no_auth_understood)
    if worker.warning:
        click.secho(worker.warning, fg="yellow", err=True)
    click.echo(f"RPC worker listening on {worker.endpoint} with {worker.threads} threads (Ctrl-C stops it).")
    click.echo(f"On the machine running Hearth: HEARTH_RPC_WORKERS={worker.endpoint} hearth serve", err=True)
    try:
        worker.run()
    except KeyboardInterrupt:
        click.echo("RPC worker stopped.", err=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # llama.cpp's server thread may be mid-computation: leave without tearing it down under it
