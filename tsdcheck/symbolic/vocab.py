"""The integer vocabulary of the encoding: operations, micro-steps, endings and instructions.

Plain integers (no z3 here) so that counterexamples, codecs and reports can name them cheaply.
"""

from __future__ import annotations

# Operations, micro-steps included (a thread's end is begin, handler*, call*, finish).
SPAWN, CREATE, DELETE, SET, GET, BEGIN, CALL, FINISH, HANDLER, PUSH, POP, FORK, END = range(13)
OP_NAMES = (
    "spawn",
    "create",
    "delete",
    "set",
    "get",
    "begin",
    "call",
    "finish",
    "handler",
    "push",
    "pop",
    "fork",
    "end",
)

# How a thread ends (the operand of ``begin``) and what joining it gives (``finish``'s ``got``).
BY_RETURN, BY_PTHREAD_EXIT, BY_CANCEL, BY_ASYNC_CANCEL = range(4)
NOT_JOINED, JOINED_RETURNED, JOINED_CANCELED = range(3)
# How the process ends (the operand of ``end``).
BY_EXIT_CALL, BY_MAIN_RETURN = range(2)

# Instructions of a destructor program's body (``get`` is a separate flag: it comes first).
NOTHING, RESET, SETKEY, DELKEY, NEWKEY, CANCEL = range(6)
NO_KEY = -1
"""A program operand naming no key within the bound: the instruction never acts."""
