#!/usr/bin/python3
"""Logs in to otpgate-sshd with paramiko and runs one command.

usage: paramiko_login.py MODE HOST PORT USER KEYFILE CODE COMMAND

MODE is
  client      paramiko's SSHClient.connect with the key (what most scripts do)
  two-step    Transport.auth_publickey, then Transport.auth_interactive
  same-service  auth_publickey, then keyboard-interactive on the ssh-userauth
              service already granted (auth_interactive_after_publickey below,
              the workaround docs/sshd.md shows)

Prints the command's output and "EXIT n"; exits 3 with "AUTH-FAILED: ..."
when the login fails.
"""
import sys
import threading

import paramiko
from paramiko.message import Message


def auth_interactive_after_publickey(transport, username, handler):
    """keyboard-interactive after a publickey partial success, without the
    second ssh-userauth service request that Transport.auth_interactive
    sends (golang.org/x/crypto/ssh servers close the connection on it)."""
    auth = transport.auth_handler
    event = threading.Event()
    with transport.lock:
        auth.auth_event = event
        auth.auth_method = "keyboard-interactive"
        auth.username = username
        auth.interactive_handler = handler
        auth.submethods = ""
        accepted = Message()
        accepted.add_string("ssh-userauth")
        accepted.rewind()
        auth._parse_service_accept(accepted)  # sends the USERAUTH_REQUEST
    return auth.wait_for_response(event)


def main():
    mode, host, port, user, keyfile, code, command = sys.argv[1:8]
    key = paramiko.Ed25519Key.from_private_key_file(keyfile)

    def answer(title, instructions, prompts):
        return [code for _ in prompts]

    try:
        if mode == "client":
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect(host, int(port), username=user, pkey=key, look_for_keys=False,
                           allow_agent=False, timeout=10, auth_timeout=10)
            transport = client.get_transport()
        else:
            transport = paramiko.Transport((host, int(port)))
            transport.start_client(timeout=10)
            rest = transport.auth_publickey(user, key)
            if rest:
                if mode == "two-step":
                    transport.auth_interactive(user, answer)
                else:
                    auth_interactive_after_publickey(transport, user, answer)
    except Exception as e:  # every way a login fails
        print("AUTH-FAILED: %s: %s" % (type(e).__name__, e))
        sys.exit(3)
    chan = transport.open_session(timeout=10)
    chan.exec_command(command)
    out = b""
    while True:
        data = chan.recv(4096)
        if not data:
            break
        out += data
    sys.stdout.write(out.decode())
    print("EXIT %d" % chan.recv_exit_status())
    transport.close()


main()
