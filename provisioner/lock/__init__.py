"""One lock per environment, where every runner sees it (beside the state), and the records
kept beside it (the rotation journal). See provisioner.lock.environment."""
