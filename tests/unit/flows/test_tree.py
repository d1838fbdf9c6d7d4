"""The decision tree: ``validate`` refuses trees that cannot be walked, and DEFAULT_TREE is DESIGN §4."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

import recovery
from recovery.flows.messages import MESSAGES
from recovery.flows.tree import (
    DEFAULT_TREE,
    DIDNT_WORK,
    END_TYPES,
    Node,
    NodeType,
    Option,
    Tree,
    TreeError,
    validate,
)

PO_FILE = Path(recovery.__file__).parent / "translations" / "pl" / "LC_MESSAGES" / "messages.po"


def tree(start: str, *nodes: Node) -> Tree:
    return Tree(start, {node.id: node for node in nodes})


def question(node_id: str, *options: tuple[str, str], **fields: str) -> Node:
    """``question("q", ("yes", "a"), ("no", "b"))``: a question whose options lead to a and b."""
    return Node(
        node_id,
        NodeType.QUESTION,
        f"q_{node_id}",
        tuple(Option(value, value, target) for value, target in options),
        **fields,
    )


DONE = Node("done", NodeType.DONE, "p_done")
HELP = Node("help", NodeType.HELP, "p_help_sent")


# -- validate ----------------------------------------------------------------------------------------


def test_a_walkable_tree_is_returned_unchanged():
    walkable = tree(
        "start",
        question("start", ("yes", "form"), ("no", "help")),
        Node("form", NodeType.EMAIL_FORM, "p_form", next="done", fallback="help"),
        DONE,
        HELP,
    )
    assert validate(walkable) is walkable


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        pytest.param(
            tree("start", question("start", ("yes", "done"), ("no", "nowhere")), DONE),
            ["'start'", "'nowhere'"],
            id="option-to-missing-node",
        ),
        pytest.param(
            tree(
                "start",
                question("start", ("yes", "form")),
                Node("form", NodeType.EMAIL_FORM, "p", next="nowhere", fallback="done"),
                DONE,
            ),
            ["'form'", "'nowhere'"],
            id="next-to-missing-node",
        ),
        pytest.param(
            tree(
                "start",
                question("start", ("yes", "form")),
                Node("form", NodeType.EMAIL_FORM, "p", next="done", fallback="nowhere"),
                DONE,
            ),
            ["'form'", "'nowhere'"],
            id="fallback-to-missing-node",
        ),
    ],
)
def test_a_dangling_edge_is_refused(broken, named):
    with pytest.raises(TreeError, match="missing node") as refused:
        validate(broken)
    for name in named:
        assert name in str(refused.value)


def test_an_unreachable_node_is_refused():
    broken = tree(
        "start",
        question("start", ("yes", "done"), ("no", "help")),
        question("orphan", ("yes", "done")),
        DONE,
        HELP,
    )
    with pytest.raises(TreeError, match="unreachable") as refused:
        validate(broken)
    assert "orphan" in str(refused.value)
    assert "start" not in str(refused.value)


def test_a_loop_through_fallbacks_is_refused():
    broken = tree(
        "start",
        question("start", ("yes", "a")),
        Node("a", NodeType.EMAIL_FORM, "p_a", next="done", fallback="b"),
        Node("b", NodeType.PHONE_FORM, "p_b", next="done", fallback="a"),
        DONE,
    )
    with pytest.raises(TreeError, match="loop") as refused:
        validate(broken)
    assert "a -> b -> a" in str(refused.value)


def test_a_question_leading_back_to_itself_is_a_loop():
    broken = tree("start", question("start", ("yes", "done"), ("again", "start")), DONE)
    with pytest.raises(TreeError, match="loop: start -> start"):
        validate(broken)


def test_a_non_end_node_without_edges_is_a_dead_end():
    broken = tree(
        "start",
        question("start", ("yes", "stuck"), ("no", "done")),
        Node("stuck", NodeType.HELP_FORM, "p_help"),
        DONE,
    )
    with pytest.raises(TreeError, match="dead end") as refused:
        validate(broken)
    assert "'stuck'" in str(refused.value)


@pytest.mark.parametrize(
    "end",
    [
        pytest.param(Node("done", NodeType.DONE, "p_done", next="help"), id="done-with-next"),
        pytest.param(
            Node("done", NodeType.DONE, "p_done", fallback="help"), id="done-with-fallback"
        ),
        pytest.param(
            Node("done", NodeType.HELP, "p_help_sent", (Option("x", "x", "help"),)),
            id="help-with-option",
        ),
    ],
)
def test_an_end_node_with_edges_is_refused(end):
    broken = tree("start", question("start", ("yes", "done"), ("no", "help")), end, HELP)
    with pytest.raises(TreeError, match="end node 'done' has edges"):
        validate(broken)


def test_a_question_without_options_is_refused():
    broken = tree(
        "start",
        question("start", ("yes", "empty"), ("no", "done")),
        question("empty", fallback="done"),
        DONE,
    )
    with pytest.raises(TreeError, match="question 'empty' needs options"):
        validate(broken)


def test_a_question_without_options_or_edges_is_refused_too():
    broken = tree(
        "start", question("start", ("yes", "empty"), ("no", "done")), question("empty"), DONE
    )
    with pytest.raises(TreeError) as refused:
        validate(broken)
    assert "'empty'" in str(refused.value)


def test_a_question_with_next_is_refused():
    broken = tree("start", question("start", ("yes", "done"), next="done"), DONE)
    with pytest.raises(TreeError, match="question 'start' needs options and no 'next'"):
        validate(broken)


@pytest.mark.parametrize(
    "node_type", [t for t in NodeType if t not in END_TYPES and t is not NodeType.QUESTION]
)
def test_a_form_without_next_is_refused(node_type):
    broken = tree(
        "start",
        question("start", ("yes", "form"), ("no", "done")),
        Node("form", node_type, "p_form", fallback="done"),
        DONE,
    )
    with pytest.raises(TreeError, match="form 'form' needs a 'next'"):
        validate(broken)


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(("yes", "yes"), id="repeated"),
        pytest.param(("yes", DIDNT_WORK), id="reserved"),
        pytest.param((DIDNT_WORK,), id="reserved-alone"),
    ],
)
def test_repeated_or_reserved_option_values_are_refused(values):
    broken = tree(
        "start",
        question("start", ("go", "ask"), ("no", "done")),
        question("ask", *((value, "done") for value in values)),
        DONE,
    )
    with pytest.raises(TreeError, match="node 'ask' has repeated or reserved option values"):
        validate(broken)


def test_reserved_option_values_are_refused_on_forms_too():
    broken = tree(
        "start",
        question("start", ("yes", "login"), ("no", "done")),
        Node(
            "login",
            NodeType.OAUTH_CHOICE,
            "p_login",
            (Option(DIDNT_WORK, "o_email", "done"),),
            next="done",
        ),
        DONE,
    )
    with pytest.raises(TreeError, match="node 'login' has repeated or reserved option values"):
        validate(broken)


def test_a_missing_start_is_refused():
    broken = tree("begin", question("start", ("yes", "done")), DONE)
    with pytest.raises(TreeError, match="start node 'begin' does not exist"):
        validate(broken)


def test_a_node_filed_under_another_id_is_refused():
    broken = Tree("start", {"start": question("start", ("yes", "end")), "end": DONE})
    with pytest.raises(TreeError, match="node 'end' calls itself 'done'"):
        validate(broken)


# -- DEFAULT_TREE ------------------------------------------------------------------------------------


def all_paths(tree: Tree) -> list[tuple[str, ...]]:
    """Every walk from the start along options, ``next`` and ``fallback`` until a node without edges."""
    paths: list[tuple[str, ...]] = []

    def walk(path: tuple[str, ...]) -> None:
        assert len(path) <= len(tree.nodes), f"a walk is longer than the tree: {path}"
        targets = list(dict.fromkeys(tree[path[-1]].edges()))
        if not targets:
            paths.append(path)
        for target in targets:
            walk((*path, target))

    walk((tree.start,))
    return paths


def test_default_tree_is_valid():
    assert validate(DEFAULT_TREE) is DEFAULT_TREE


def test_every_path_of_the_default_tree_ends_in_done_or_help():
    paths = all_paths(DEFAULT_TREE)
    assert len(paths) > 10
    for path in paths:
        assert DEFAULT_TREE[path[-1]].type in END_TYPES, " -> ".join(path)
    assert {path[-1] for path in paths} == {"done", "help_sent"}
    # Every node is on some walk.
    assert {node for path in paths for node in path} == set(DEFAULT_TREE.nodes)


# new_password fails forward by its "skip" option (continue without a password).
FAIL_FORWARD_NODES = [
    node_id
    for node_id, node in DEFAULT_TREE.nodes.items()
    if node.type not in END_TYPES and node.type is not NodeType.HELP_FORM
]


@pytest.mark.parametrize("node_id", FAIL_FORWARD_NODES)
def test_every_step_but_the_help_form_can_fail_forward(node_id):
    node = DEFAULT_TREE[node_id]
    if node.type is NodeType.QUESTION:
        # A question leads on by its options (one of them is the "no"/"none" way onwards).
        assert len(node.options) >= 2
        assert all(option.next != node_id for option in node.options)
    elif node.type is NodeType.PASSWORD_FORM:
        # Control is proven already: a password is offered, and skipping it still finishes.
        assert [(o.value, DEFAULT_TREE[o.next].type) for o in node.options] == [
            ("skip", NodeType.DONE)
        ]
    else:
        assert node.fallback is not None, f"{node_id} has no 'didn't work' way on"
        assert node.fallback != node_id


def test_the_help_form_is_the_last_resort():
    help_forms = [n for n in DEFAULT_TREE.nodes.values() if n.type is NodeType.HELP_FORM]
    assert [n.id for n in help_forms] == ["help"]
    assert help_forms[0].fallback is None
    assert DEFAULT_TREE[help_forms[0].next].type is NodeType.HELP


def options_of(node: Node) -> dict[str, str]:
    return {option.value: option.next for option in node.options}


def test_default_tree_follows_design_section_4():
    start = DEFAULT_TREE[DEFAULT_TREE.start]
    assert DEFAULT_TREE.start == "start"
    assert start.type is NodeType.QUESTION
    assert start.prompt == "q_order_emails"
    assert "order" in str(MESSAGES[start.prompt]._args[0]).lower()
    assert options_of(start) == {"yes": "email", "no": "paypal"}

    # yes -> email reset: address, code, new password, done; failing it goes to PayPal.
    email = DEFAULT_TREE["email"]
    assert (email.type, email.next, email.fallback) == (NodeType.EMAIL_FORM, "email_code", "paypal")
    code = DEFAULT_TREE["email_code"]
    assert (code.type, code.next, code.fallback) == (NodeType.CODE_FORM, "new_password", "paypal")
    assert DEFAULT_TREE["new_password"].type is NodeType.PASSWORD_FORM
    assert DEFAULT_TREE["new_password"].next == "done"

    paypal = DEFAULT_TREE["paypal"]
    assert paypal.type is NodeType.QUESTION
    assert paypal.prompt == "q_paypal_guest"
    assert options_of(paypal) == {"yes": "paypal_login", "no": "social"}

    login = DEFAULT_TREE["paypal_login"]
    assert login.type is NodeType.OAUTH_CHOICE
    assert login.params["providers"] == "paypal"
    assert (login.next, login.fallback) == ("done", "social")
    assert options_of(login) == {"paypal_email": "paypal_email"}
    paypal_email = DEFAULT_TREE["paypal_email"]
    assert paypal_email.type is NodeType.EMAIL_FORM
    assert paypal_email.fallback == "social"
    assert DEFAULT_TREE[paypal_email.next].type is NodeType.CODE_FORM
    assert DEFAULT_TREE[paypal_email.next].fallback == "social"

    social = DEFAULT_TREE["social"]
    assert social.type is NodeType.QUESTION
    assert social.prompt == "q_social"
    assert list(options_of(social)) == ["google", "facebook", "phone", "none"]
    assert options_of(social)["none"] == "help"
    assert DEFAULT_TREE["help"].type is NodeType.HELP_FORM

    for provider in ("google", "facebook"):
        node = DEFAULT_TREE[options_of(social)[provider]]
        assert node.type is NodeType.OAUTH_CHOICE
        assert node.params["providers"] == provider
        assert (node.next, node.fallback) == ("done", "help")
    phone = DEFAULT_TREE[options_of(social)["phone"]]
    assert (phone.type, phone.fallback) == (NodeType.PHONE_FORM, "help")
    phone_code = DEFAULT_TREE[phone.next]
    assert (phone_code.type, phone_code.fallback) == (NodeType.CODE_FORM, "help")


def message_ids() -> list[str]:
    ids = {DIDNT_WORK}  # the API adds a "didn't work" option to every node with a fallback
    for node in DEFAULT_TREE.nodes.values():
        ids.add(node.prompt)
        ids.update(option.label for option in node.options)
    return sorted(ids)


@pytest.fixture(scope="module")
def polish() -> dict[str, str]:
    with PO_FILE.open("rb") as po:
        catalog = read_po(po, locale="pl")
    return {
        message.id: message.string
        for message in catalog
        if message.id and not message.fuzzy and isinstance(message.id, str)
    }


@pytest.mark.parametrize("message_id", message_ids())
def test_every_prompt_and_label_has_english_and_polish_words(message_id, polish):
    assert message_id in MESSAGES
    english = MESSAGES[message_id]._args[0]
    assert english.strip()
    assert polish.get(english, "").strip(), f"no Polish translation of {english!r}"
