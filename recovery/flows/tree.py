"""The recovery decision tree (DESIGN §4) as data, and the checks that keep it walkable.

The tree is declarative: nodes with a type, a prompt and the edges out of them. ``validate`` runs at
start-up, so a tree with a dangling edge, an unreachable node, a loop or a dead end never serves.
Prompts are message ids; the faces translate them (pages) or send them with their English text (API).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class NodeType(enum.StrEnum):
    QUESTION = "question"  # pick one option
    EMAIL_FORM = "email_form"  # give an email address: a link and a code are sent to it
    OAUTH_CHOICE = "oauth_choice"  # sign in with a provider
    PHONE_FORM = "phone_form"  # give a phone number: an SMS code is sent to it
    CODE_FORM = "code_form"  # type the code that was sent
    PASSWORD_FORM = "password_form"  # noqa: S105 - choose a new password
    HELP_FORM = "help_form"  # ask a person for help
    DONE = "done"  # end: the person proved control of the account
    HELP = "help"  # end: a help case is open


END_TYPES = frozenset({NodeType.DONE, NodeType.HELP})

#: The value that means "this did not work for me": it follows a node's ``fallback`` edge.
DIDNT_WORK = "didnt_work"


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str  # message id
    next: str


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    type: NodeType
    prompt: str  # message id
    options: tuple[Option, ...] = ()
    #: Where a successful answer leads (forms).
    next: str | None = None
    #: Where "that didn't work" leads: every branch can fail forward (DESIGN §4).
    fallback: str | None = None
    #: Extra data for the face, e.g. the providers of an ``oauth_choice``.
    params: Mapping[str, str] = field(default_factory=dict)

    def edges(self) -> Iterable[str]:
        yield from (option.next for option in self.options)
        if self.next:
            yield self.next
        if self.fallback:
            yield self.fallback


class TreeError(ValueError):
    """The tree cannot be walked; the message names the node."""


@dataclass(frozen=True, slots=True)
class Tree:
    start: str
    nodes: Mapping[str, Node]

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]


def validate(tree: Tree) -> Tree:
    """Check ``tree`` is a walkable decision tree: every edge leads to a node, every node is
    reachable from the start, no walk loops, and every walk ends in ``done`` or ``help``."""
    if tree.start not in tree.nodes:
        raise TreeError(f"start node {tree.start!r} does not exist")
    for node_id, node in tree.nodes.items():
        if node.id != node_id:
            raise TreeError(f"node {node_id!r} calls itself {node.id!r}")
        for target in node.edges():
            if target not in tree.nodes:
                raise TreeError(f"node {node_id!r} leads to missing node {target!r}")
        if node.type in END_TYPES and any(True for _ in node.edges()):
            raise TreeError(f"end node {node_id!r} has edges")
        if node.type not in END_TYPES and not any(True for _ in node.edges()):
            raise TreeError(f"node {node_id!r} is a dead end: it is neither done nor help")
        if node.type is NodeType.QUESTION and (node.next or not node.options):
            raise TreeError(f"question {node_id!r} needs options and no 'next'")
        if node.type not in END_TYPES | {NodeType.QUESTION} and not node.next:
            raise TreeError(f"form {node_id!r} needs a 'next' for a successful answer")
        values = [option.value for option in node.options]
        if len(values) != len(set(values)) or DIDNT_WORK in values:
            raise TreeError(f"node {node_id!r} has repeated or reserved option values")

    # Depth-first walk: a grey node met again is a loop.
    state: dict[str, str] = {}

    def walk(node_id: str, path: tuple[str, ...]) -> None:
        if state.get(node_id) == "grey":
            raise TreeError(f"loop: {' -> '.join((*path, node_id))}")
        if state.get(node_id) == "black":
            return
        state[node_id] = "grey"
        for target in tree.nodes[node_id].edges():
            walk(target, (*path, node_id))
        state[node_id] = "black"

    walk(tree.start, ())
    unreachable = sorted(set(tree.nodes) - set(state))
    if unreachable:
        raise TreeError(f"unreachable nodes: {', '.join(unreachable)}")
    return tree


def _tree(start: str, *nodes: Node) -> Tree:
    return Tree(start, {node.id: node for node in nodes})


#: DESIGN §4: order emails → PayPal → Google/Facebook/phone → a person.
DEFAULT_TREE = validate(
    _tree(
        "start",
        Node(
            "start",
            NodeType.QUESTION,
            "q_order_emails",
            (
                Option("yes", "yes", "email"),
                Option("no", "no", "paypal"),
            ),
        ),
        Node("email", NodeType.EMAIL_FORM, "p_email", next="email_code", fallback="paypal"),
        Node(
            "email_code", NodeType.CODE_FORM, "p_email_code", next="new_password", fallback="paypal"
        ),
        # A password is offered, not forced: a guest or social-only customer may not want one.
        Node(
            "new_password",
            NodeType.PASSWORD_FORM,
            "p_new_password",
            (Option("skip", "o_skip_password", "done"),),
            next="done",
        ),
        Node(
            "paypal",
            NodeType.QUESTION,
            "q_paypal_guest",
            (
                Option("yes", "yes", "paypal_login"),
                Option("no", "no", "social"),
            ),
        ),
        Node(
            "paypal_login",
            NodeType.OAUTH_CHOICE,
            "p_paypal_login",
            (Option("paypal_email", "o_paypal_email", "paypal_email"),),
            next="done",
            fallback="social",
            params={"providers": "paypal"},
        ),
        Node(
            "paypal_email",
            NodeType.EMAIL_FORM,
            "p_paypal_email",
            next="paypal_email_code",
            fallback="social",
        ),
        Node(
            "paypal_email_code",
            NodeType.CODE_FORM,
            "p_email_code",
            next="new_password",
            fallback="social",
        ),
        Node(
            "social",
            NodeType.QUESTION,
            "q_social",
            (
                Option("google", "o_google", "google_login"),
                Option("facebook", "o_facebook", "facebook_login"),
                Option("phone", "o_phone", "phone"),
                Option("none", "o_none", "help"),
            ),
        ),
        Node(
            "google_login",
            NodeType.OAUTH_CHOICE,
            "p_google_login",
            next="done",
            fallback="help",
            params={"providers": "google"},
        ),
        Node(
            "facebook_login",
            NodeType.OAUTH_CHOICE,
            "p_facebook_login",
            next="done",
            fallback="help",
            params={"providers": "facebook"},
        ),
        Node("phone", NodeType.PHONE_FORM, "p_phone", next="phone_code", fallback="help"),
        Node("phone_code", NodeType.CODE_FORM, "p_sms_code", next="new_password", fallback="help"),
        Node("help", NodeType.HELP_FORM, "p_help", next="help_sent"),
        Node("help_sent", NodeType.HELP, "p_help_sent"),
        Node("done", NodeType.DONE, "p_done"),
    )
)
