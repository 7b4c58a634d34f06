"""A user's own Terraform beside the generated files (issue 23, README "Your own Terraform"):
render keeps it, `render --check` names it as the user's, not as out of date."""

from __future__ import annotations

from tests.helpers.project import Project

USER_TF = 'data "databricks_current_user" "me" {}\n'


def test_render_and_check_name_user_files_and_leave_them_alone(project: Project) -> None:
    assert project.run("render").returncode == 0
    root = project.root()
    (root / "user.tf").write_text(USER_TF, encoding="utf-8")
    (root / "extra.tf.json").write_text("{}\n", encoding="utf-8")
    checked = project.run("render", "--check")
    assert checked.returncode == 0, checked.stderr
    assert "your own files (not generated, so not checked): extra.tf.json, user.tf" in checked.stdout
    rendered = project.run("render")
    assert rendered.returncode == 0, rendered.stderr
    assert "your own files (not generated, left as they are): extra.tf.json, user.tf" in rendered.stdout
    assert (root / "user.tf").read_text(encoding="utf-8") == USER_TF
