# Uses the edge-site module from a git repository, pinned by a version constraint.
# Make the repository first: ./make-repo.sh (see README.md), then `flotilla init`.

module "beijing" {
  source  = "git::file:///tmp/flotilla-example-modules.git//edge-site"
  version = "~> 1.0"

  site  = "beijing-edge"
  nodes = 5
}

output "labels" {
  value = module.beijing.labels
}
