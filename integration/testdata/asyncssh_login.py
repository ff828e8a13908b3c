#!/usr/bin/python3
"""Log in to an SSH server with asyncssh: a public key, then the code at the
keyboard-interactive prompt, and run a command.

usage: asyncssh_login.py HOST PORT USER KEYFILE CODE COMMAND
Prints what the server said in its challenges ("SAID: ..."), the command's
output and "EXIT <status>"; exits 3 when authentication fails.
"""
import asyncio
import sys

import asyncssh


class Client(asyncssh.SSHClient):
    def __init__(self, code):
        self.code = code

    def kbdint_auth_requested(self):
        return ""  # every submethod

    def kbdint_challenge_received(self, name, instructions, lang, prompts):
        for text in (name, instructions):
            if text:
                print("SAID: " + text.rstrip("\n"), flush=True)
        answers = []
        for prompt, _echo in prompts:
            print("PROMPT: " + prompt.strip(), flush=True)
            answers.append(self.code)
        return answers


async def main(host, port, user, keyfile, code, command):
    try:
        conn, _ = await asyncssh.create_connection(
            lambda: Client(code), host, int(port), username=user,
            client_keys=[keyfile], known_hosts=None, password=None)
    except (asyncssh.PermissionDenied, asyncssh.DisconnectError) as e:
        print("AUTH-FAILED: " + str(e), flush=True)
        return 3
    async with conn:
        result = await conn.run(command)
        sys.stdout.write(result.stdout)
        print("EXIT %d" % result.exit_status, flush=True)
        return 0


sys.exit(asyncio.run(main(*sys.argv[1:7])))
