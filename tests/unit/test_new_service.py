"""``make new-service`` (``tools/new_service.py``) without writing a service
here: the names it refuses, what it adds to contracts/services.py, and the
first revision of a new history (``python -m tools.db revision``), which the
scaffold writes with it. tests/integration/test_tutorial.py scaffolds a whole
service in a scratch copy, runs its tests and a mesh with it."""
import os
import re
import shutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from common.config import ROOT
from mesh.db import MIGRATIONS_DIR, bootstrap, make_engine
from services.customers_models import CustomersBase
from tools import db as db_tool
from tools import new_service


@pytest.mark.parametrize("name, why", [
    ("Shipping", "not a lowercase Python identifier"),
    ("gift-cards", "not a lowercase Python identifier"),
    ("2fast", "not a lowercase Python identifier"),
    ("", "not a lowercase Python identifier"),
    ("class", "a Python keyword"),
    ("match", "a Python keyword"),
    ("mesh", "a reserved word of the mesh"),
    ("inbox", "a reserved word of the mesh"),
    ("user", "a word PostgreSQL reserves"),
    ("billing", "already declared"),
    ("analytics", "already declared"),
    ("rpc_services", "already defines RPC_SERVICES"),
    ("x" * 41, "longer than 40"),
    ("pay_", "not a lowercase Python identifier"),
    ("pay__ments", "not a lowercase Python identifier"),
])
def test_bad_names_are_refused_saying_why(name, why):
    with pytest.raises(new_service.BadName, match=why):
        new_service.check_name(name, new_service.default_entity(name or "x"))


def test_an_entity_whose_error_exists_is_refused():
    with pytest.raises(new_service.BadName, match="already defines CustomerNotFound"):
        new_service.check_name("clients", "customer")


def test_a_begun_service_is_refused(tmp_path):
    (tmp_path / "services").mkdir()
    (tmp_path / "services" / "scaffold_probe_models.py").write_text("")
    with pytest.raises(new_service.BadName,
                       match="services/scaffold_probe_models.py already exist"):
        new_service.check_name("scaffold_probe", "probe", root=str(tmp_path))


def test_a_good_name_and_its_words():
    # a name nobody declares (not "shipping", make new-service's example)
    assert "services/scaffold_probe.py" in new_service.check_name("scaffold_probe", "probe")
    assert new_service.default_entity("payments") == "payment"
    assert new_service.default_entity("shipping") == "shipping_record"
    assert new_service.words("gift_cards", "gift_card")["Entity"] == "GiftCard"
    assert [new_service.plural(w) for w in ("payment", "entry", "box", "day")] == [
        "payments", "entries", "boxes", "days"]


def test_the_declaration_goes_after_the_names_and_last_in_declarations():
    with open(os.path.join(ROOT, "contracts", "services.py")) as handle:
        text = handle.read()
    from contracts.services import BY_NAME
    changed = new_service.add_declaration(text, "scaffold_probe", set(BY_NAME))
    namespace = {}
    exec(compile(changed, "services.py", "exec"), namespace)  # noqa: S102  our own file
    assert namespace["SCAFFOLD_PROBE"] == "scaffold_probe"
    assert namespace["DECLARATIONS"][-1].name == "scaffold_probe"
    assert namespace["DECLARATIONS"][-1].database
    # the constant joins the service names, not the kinds below them
    names = re.findall(r'^([A-Z_]+) = "', changed, re.M)
    assert names.index("SCAFFOLD_PROBE") == names.index("RPC") - 1


def test_the_first_revision_of_a_new_history(tmp_path):
    """What failed with "0 heads ... renumber the later one": a history with no
    revision yet gets 0001, every table of its models."""
    history = tmp_path / "customers"
    shutil.copytree(os.path.join(MIGRATIONS_DIR, "customers"), history,
                    ignore=shutil.ignore_patterns("__pycache__", "versions"))
    (history / "versions").mkdir()
    path = db_tool.revision(str(history), "first tables")
    assert os.path.basename(path) == "0001_first_tables.py"
    assert "down_revision = None" in open(path).read()
    engine = make_engine("sqlite:///{}/customers.db".format(tmp_path))
    assert bootstrap(engine, CustomersBase.metadata, migrations=str(history)) == (
        "customers database: empty, created at head 0001")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, CustomersBase.metadata) == []
    assert db_tool.revision(str(history), "again") is None  # nothing left to write


def test_the_makefile_target_runs_the_scaffold():
    with open(os.path.join(ROOT, "Makefile")) as handle:
        makefile = handle.read()
    recipe = makefile.split("\nnew-service:", 1)[1].split("\n\n", 1)[0]
    assert "$(BIN)/python -m tools.new_service $(NAME)" in recipe
