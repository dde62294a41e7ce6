# An edge-site module as a platform team publishes it: one ConfigMap-shaped record per site,
# and the labels every cluster at the site carries. Tagged v1.0.0 and v1.1.0 by make-repo.sh.

variable "site" {
  type        = string
  description = "The site's name, e.g. beijing-edge."
}

variable "nodes" {
  type        = number
  default     = 3
  description = "How many edge nodes the site runs."
}

locals {
  release = trimspace(file("${path.module}/VERSION"))
}

resource "builtin_data" "site" {
  input = {
    site    = var.site
    nodes   = var.nodes
    release = local.release
  }
}

output "labels" {
  value = {
    "flotilla.dev/site"              = var.site
    "flotilla.dev/edge-site-release" = local.release
  }
}
