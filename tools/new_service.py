"""``make new-service NAME=shipping``: a new service, written the way the mesh
writes services, that runs and passes its tests as it is.

    python -m tools.new_service shipping                    # what `make new-service` runs
    python -m tools.new_service payments --entity payment   # its table's rows are payments

It writes (from ``tools/templates/new_service/``):

* ``services/<name>.py``, ``<name>_models.py`` (its own declarative base, its
  table and its inbox), ``<name>_schemas.py``, ``<name>_seed.py``: a list, a
  get and a create that applies once (``@rpc(inbox=True)``);
* ``migrations/<name>/``: ``env.py``, ``script.py.mako`` and the first
  revision, ``versions/0001_first_tables.py``, written from the models by
  ``python -m tools.db revision <name>``, as every later one is;
* ``tests/unit/test_<name>.py`` and ``tests/integration/test_<name>_rpc.py``;

and adds to what exists:

* ``contracts/services.py``: the name's constant and ``Service(<NAME>,
  database=True)`` at the end of ``DECLARATIONS``; then ``python -m
  tools.generate`` writes the files that derive from the declarations (the
  Procfile, compose's services, postgres-init.sql, prometheus.yml);
* ``contracts/errors.py``: ``<Entity>NotFound`` (every error lives there, so
  that it crosses RPC hops as itself);
* ``docs/rpc.md``: the service's section, with its methods' examples.

The row of the table is ``--entity`` (default: the name without its plural
``s``, ``payments`` -> ``payment``; else ``<name>_record``). A name must be a
lowercase Python identifier, not a keyword, not a word PostgreSQL reserves (its
database has the name), not declared yet, and its files must not exist: else
nothing is written and it says why. docs/tutorial.md goes on from here.
"""
import argparse
import keyword
import os
import re
import shlex
import string
import subprocess
import sys

from common.config import ROOT
from contracts import errors as error_table
from contracts import services as declarations

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates", "new_service")
NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*\Z")
MAX_NAME_LENGTH = 40  # a PostgreSQL database name; queue names carry it several times
FIRST_REVISION = "first tables"

# the project's own packages and words whose meaning is taken in the mesh
RESERVED = {"contracts", "common", "mesh", "services", "streams", "tools", "tests", "migrations",
            "bench", "scripts", "docker", "docs", "examples", "nameko", "rpc", "edge", "process",
            "inbox", "outbox", "topology", "events", "service", "config", "health", "metrics"}
# PostgreSQL's reserved key words (its documentation's appendix C): `CREATE
# DATABASE <name>` (docker/postgres-init.sql) refuses them
POSTGRES_RESERVED = {
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both",
    "case", "cast", "check", "collate", "column", "constraint", "create", "current_catalog",
    "current_date", "current_role", "current_time", "current_timestamp", "current_user",
    "default", "deferrable", "desc", "distinct", "do", "else", "end", "except", "false",
    "fetch", "for", "foreign", "from", "grant", "group", "having", "in", "initially",
    "intersect", "into", "lateral", "leading", "limit", "localtime", "localtimestamp", "not",
    "null", "offset", "on", "only", "or", "order", "placing", "primary", "references",
    "returning", "select", "session_user", "some", "symmetric", "system_user", "table",
    "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when",
    "where", "window", "with"}


class BadName(ValueError):
    """A name the scaffold refuses; the message says why."""


def camel(snake):
    """``shipping_record`` -> ``ShippingRecord``."""
    return "".join(part.capitalize() for part in snake.split("_"))


def plural(word):
    """``payment`` -> ``payments``, ``entry`` -> ``entries``, ``box`` -> ``boxes``."""
    if re.search(r"[^aeiou]y\Z", word):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    return word + "s"


def default_entity(name):
    """What one row of a new service's table is called, unless given."""
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name + "_record"


def check_identifier(word, what):
    if not NAME.match(word or ""):
        raise BadName("{} {!r} is not a lowercase Python identifier (a letter, then letters, "
                      "digits, single _ between them): e.g. shipping, gift_cards".format(
                          what, word))
    if len(word) > MAX_NAME_LENGTH:
        raise BadName("{} {!r} is longer than {} characters".format(what, word, MAX_NAME_LENGTH))
    if keyword.iskeyword(word) or keyword.issoftkeyword(word):
        raise BadName("{} {!r} is a Python keyword".format(what, word))


def check_name(name, entity, root=ROOT, declared=None):
    """Raise ``BadName`` saying why ``name`` (with ``entity``) cannot be a new
    service here; return the paths it would write."""
    check_identifier(name, "the name")
    check_identifier(entity, "the entity")
    if name in RESERVED:
        raise BadName("{!r} is a reserved word of the mesh (a package or a word its "
                      "tools use): choose another name".format(name))
    if name in POSTGRES_RESERVED or plural(entity) in POSTGRES_RESERVED:
        raise BadName("{!r} is a word PostgreSQL reserves (its database, its table): "
                      "choose another name".format(name if name in POSTGRES_RESERVED
                                                   else plural(entity)))
    declared = declarations.BY_NAME if declared is None else declared
    if name in declared:
        raise BadName("{!r} is already declared in contracts/services.py".format(name))
    if hasattr(declarations, name.upper()):
        raise BadName("contracts/services.py already defines {}: choose another name".format(
            name.upper()))
    error = camel(entity) + "NotFound"
    if hasattr(error_table, error):
        raise BadName("contracts/errors.py already defines {}: choose another entity "
                      "(ENTITY=...)".format(error))
    paths = planned_paths(name)
    existing = [path for path in paths if os.path.exists(os.path.join(root, path))]
    if existing:
        raise BadName("{} already exist(s): a service named {!r} was begun; remove it "
                      "first, or choose another name".format(", ".join(existing), name))
    return paths


# (template, where it is written); the first revision is written by tools.db
FILES = [
    ("service.py.tmpl", "services/{name}.py"),
    ("models.py.tmpl", "services/{name}_models.py"),
    ("schemas.py.tmpl", "services/{name}_schemas.py"),
    ("seed.py.tmpl", "services/{name}_seed.py"),
    ("env.py.tmpl", "migrations/{name}/env.py"),
    ("script.py.mako", "migrations/{name}/script.py.mako"),  # copied as it is
    ("test_unit.py.tmpl", "tests/unit/test_{name}.py"),
    ("test_integration.py.tmpl", "tests/integration/test_{name}_rpc.py"),
]


def planned_paths(name):
    return [target.format(name=name) for _, target in FILES] + [
        "migrations/{}".format(name)]


def words(name, entity):
    """The template's placeholders: ``$name``, ``$Name``, ``$NAME``, ``$entity``, ..."""
    return {"name": name, "Name": camel(name), "NAME": name.upper(),
            "entity": entity, "Entity": camel(entity), "ENTITY": entity.upper(),
            "entities": plural(entity)}


def render(template, values):
    with open(os.path.join(TEMPLATES, template), encoding="utf-8") as handle:
        text = handle.read()
    if template.endswith(".tmpl"):
        text = string.Template(text).substitute(values)
    return text


def add_declaration(text, name, declared=()):
    """contracts/services.py's text with ``NAME = "name"`` after the last
    constant naming a declared service (``declared``), and ``Service(NAME,
    database=True),`` last in ``DECLARATIONS``."""
    constant = '{} = "{}"\n'.format(name.upper(), name)
    constants = [match for match in re.finditer(r'^[A-Z_0-9]+ = "([a-z_0-9]+)".*\n', text, re.M)
                 if match.group(1) in declared]
    if not constants:
        raise SystemExit("contracts/services.py: no service name constant found to add to")
    at = constants[-1].end()
    text = text[:at] + constant + text[at:]
    match = re.search(r"^DECLARATIONS = \(\n.*?^\)\n", text, re.M | re.S)
    if not match:
        raise SystemExit("contracts/services.py: no `DECLARATIONS = (` ... `)` found")
    end = match.end() - 2  # before the closing parenthesis
    entry = "    Service({}, database=True),\n".format(name.upper())
    return text[:end] + entry + text[end:]


def add_error(text, entity):
    """contracts/errors.py's text with ``<Entity>NotFound`` last of the domain errors."""
    error = 'class {}NotFound(NotFound):\n    code = "{}_NOT_FOUND"\n\n\n'.format(
        camel(entity), entity.upper())
    marker = "def all_errors():"
    if marker not in text:
        raise SystemExit("contracts/errors.py: `def all_errors():` not found")
    return text.replace(marker, error + marker, 1)


def add_rpc_section(text, section):
    """docs/rpc.md's text with the service's section after the last service's
    (before the asyncio client's section), or at the end."""
    marker = "\n## From asyncio code"
    if marker in text:
        return text.replace(marker, "\n" + section.rstrip("\n") + "\n" + marker, 1)
    return text.rstrip("\n") + "\n\n" + section


def edit(path, change, *args):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(change(text, *args))


def run(*args):
    """``python -m ...`` in a process of its own, at the root: the new modules and
    the new declaration are imported fresh."""
    subprocess.run([sys.executable, "-m"] + list(args), cwd=ROOT, check=True)


def scaffold(name, entity=None, root=ROOT):
    """Write the service ``name``; the paths written or changed."""
    entity = entity or default_entity(name)
    check_name(name, entity, root)
    values = words(name, entity)
    written = []
    os.makedirs(os.path.join(root, "migrations", name, "versions"))
    for template, target in FILES:
        path = target.format(name=name)
        with open(os.path.join(root, path), "w", encoding="utf-8") as handle:
            handle.write(render(template, values))
        written.append(path)
    edit(os.path.join(root, "contracts", "services.py"), add_declaration, name,
         set(declarations.BY_NAME))
    edit(os.path.join(root, "contracts", "errors.py"), add_error, entity)
    edit(os.path.join(root, "docs", "rpc.md"), add_rpc_section, render("rpc.md.tmpl", values))
    written += ["contracts/services.py", "contracts/errors.py", "docs/rpc.md"]
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.new_service",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the service's name: a lowercase identifier")
    parser.add_argument("--entity", help="what one row of its table is (default: the name "
                                         "without its plural s, else <name>_record)")
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.name, args.entity)
    except BadName as exc:
        sys.exit("make new-service: {}".format(exc))
    for path in written:
        print("wrote", path)
    for step in (("tools.generate",), ("tools.db", "revision", args.name, "-m", FIRST_REVISION)):
        try:
            run(*step)
        except subprocess.CalledProcessError:
            sys.exit("make new-service: `python -m {}` failed (above); the files listed are "
                     "written: fix what it says, then run it again".format(" ".join(
                         shlex.quote(word) for word in step)))
    print("\n{name} is declared and written. Next:\n"
          "  nameko test tests/unit/test_{name}.py tests/integration/test_{name}_rpc.py\n"
          "  make run          # {name} in GET /services and the console\n"
          "  docs/tutorial.md  # an RPC that awaits another service, events, a route"
          .format(name=args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
