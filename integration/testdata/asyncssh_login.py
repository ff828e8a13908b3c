#!/usr/bin/python3
"""Logs in to otpgate-sshd with asyncssh and runs one command.

usage: asyncssh_login.py HOST PORT USER KEYFILE CODE COMMAND

asyncssh offers the key, then answers each keyboard-interactive prompt
with CODE in its kbdint_challenge_received handler (logging the prompt to
stderr as "PROMPT: ..."). Prints the command's output and "EXIT n"; exits
3 with "AUTH-FAILED: ..." when the login fails.
"""
import asyncio
import sys

import asyncssh


def main():
    host, port, user, keyfile, code, command = sys.argv[1:7]

    class Client(asyncssh.SSHClient):
        def kbdint_auth_requested(self):
            return ""

        def kbdint_challenge_received(self, name, instructions, lang, prompts):
            for prompt, _ in prompts:
                sys.stderr.write("PROMPT: %s\n" % prompt)
            return [code for _ in prompts]

    async def run():
        try:
            conn, _ = await asyncssh.create_connection(
                Client, host, int(port), username=user,
                client_keys=[asyncssh.read_private_key(keyfile)],
                known_hosts=None, agent_path=None, password=None,
                login_timeout=10)
        except (asyncssh.Error, OSError) as e:  # every way a login fails
            print("AUTH-FAILED: %s: %s" % (type(e).__name__, e))
            sys.exit(3)
        async with conn:
            result = await conn.run(command)
        sys.stdout.write(result.stdout)
        print("EXIT %d" % result.exit_status)

    asyncio.run(run())


main()
