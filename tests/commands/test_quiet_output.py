"""What the tool prints is what it means: the targeted steps it plans on purpose are said once
in its own words, without Terraform's "Resource targeting is in effect … not for routine use" /
"Applied changes may be incomplete" (written for a person who typed -target); a warning about
the user's environment (TF_LOG) is printed once per command, not once per Terraform run.
"""

from __future__ import annotations

from tests.helpers.project import Project, applied

TERRAFORM_TARGETING = ("Resource targeting is in effect", "Applied changes may be incomplete", "-target option")


def test_first_secret_scope_apply_and_destroy_say_it_in_the_tools_words(project: Project) -> None:
    first = project.run("apply", "--auto-approve")
    assert first.returncode == 0, first.stderr
    said = first.stdout + first.stderr
    assert not [w for w in TERRAFORM_TARGETING if w in said], said
    assert said.count("creating secret scope aep-dlz alone first (terraform apply -target)") == 1
    # Terraform's own account of what it did is all there.
    assert "databricks_secret_scope.dlz: Creation complete" in said
    assert said.count("Apply complete!") == 2  # the scope alone, then the reviewed rest

    gone = project.run("destroy", "--auto-approve")
    assert gone.returncode == 0, gone.stderr
    said = gone.stdout + gone.stderr
    assert not [w for w in TERRAFORM_TARGETING if w in said], said
    assert said.count("kept secret scope aep-dlz") == 1  # said once, after Terraform's own account
    assert "Destroy complete!" in said or "Apply complete!" in said


def test_the_tf_log_warning_is_printed_once_per_command(project: Project) -> None:
    applied(project)
    done = project.run("rotate", "--auto-approve", env=project.env(TF_LOG="DEBUG", TF_LOG_PATH="/tmp/x.log"))
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "ignoring TF_LOG" in line]
    assert len(warnings) == 1, done.stderr
    assert "pass --debug" in warnings[0]
