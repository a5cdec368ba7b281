"""The registry: every task's class, and the README's option table generated from their declarations."""
import os
import re

from aign_tf.zoo import registry

README = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")


def test_readme_option_table_is_the_generated_one():
    text = open(README, encoding="utf-8").read()
    table = re.search(r"<!-- options-table:begin -->\n(.*?)\n<!-- options-table:end -->", text, re.S).group(1)
    assert table == registry.options_table(), "regenerate the README's option table (see README)"


def test_every_option_of_every_task_has_a_row_with_its_default():
    table = registry.options_table()
    for name in registry.TASKS:
        task = registry.task_class(name)
        for field in task.Options.option_fields():
            rows = [r for r in table.splitlines() if r.startswith(f"| `--{field.name}` |") and name in r.split("|")[2]]
            assert len(rows) == 1, (name, field.name)
            default = "none" if field.default is None else str(field.default).lower()
            assert f"`{default}`" in rows[0].split("|")[2].lower(), (name, field.name, rows[0])
