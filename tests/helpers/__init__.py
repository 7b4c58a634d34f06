"""What tests share, one definition each, by topic (conftests hold only fixtures and import from here):

- `config`: the repository, the workspace every test names, the base provision.yaml, throwaway secrets.
- `project`: a throwaway project driven through the real CLI, and reading its sandbox afterwards.
- `output`: what a CLI run printed (error lines, no secrets).
- `sandbox`: a running `Sandbox` (its PAT, a workspace client, Azurite, AEP's credentials), and raw
  HTTP against its emulators.
- `provider_root`: a Terraform root on the stand-in provider, driven with the real terraform binary.
- `leaks`: every form a secret may take, and scans of text, bytes and trees for them.
- `processes`: a CLI run whose process tree is sampled, a CLI run in the background, a barrier.
- `pg`: a throwaway PostgreSQL server (the `pg` fixture in tests/conftest.py starts one per module).
- `identity`: a service principal with OAuth M2M credentials.
- `install`: a wheel built once per test session for the install tests.
"""
