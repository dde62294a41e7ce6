# The quickstart: a management cluster, two clusters made with Cluster API, a fleet joined to
# Karmada, platform addons, a policy and an application, in one `flotilla apply`, against
# sandbox clusters started on demand (nothing to install).

# The management cluster: runs Cluster API and the Karmada control plane.
cluster "mgmt" {
  sandbox = "mgmt"
}

# Two workload clusters, created by Cluster API on mgmt.
cluster "beijing" {
  management         = cluster.mgmt
  kubernetes_version = "v1.31.2"
  labels             = { region = "cn-north" }
}

cluster "shanghai" {
  management         = cluster.mgmt
  kubernetes_version = "v1.31.2"
  labels             = { region = "cn-east" }
}

# Both, joined to Karmada on mgmt, with Flux on each.
fleet "prod" {
  clusters      = [cluster.beijing, cluster.shanghai]
  control_plane = cluster.mgmt
}

# Platform components on every member, as Flux Helm releases.
addon "flagger" {
  fleet = fleet.prod
}

addon "istio" {
  fleet = fleet.prod
}

addon "kyverno" {
  fleet = fleet.prod
}

# Volcano for the batch workloads in beijing only.
addon "volcano" {
  fleet   = fleet.prod
  members = ["beijing"]
}

# Every pod states its requests, enforced on the whole fleet through Karmada.
policy "require-requests" {
  fleet      = fleet.prod
  preset     = "require-requests-limits"
  mode       = "enforce"
  depends_on = [addon.kyverno]
}

# The checkout service on every member, analysed by a Flagger canary over Istio.
rollout "checkout" {
  fleet      = fleet.prod
  namespace  = "shop"
  image      = "ghcr.io/acme/checkout:${var.checkout_version}"
  strategy   = "canary"
  depends_on = [addon.flagger, addon.istio]
}

variable "checkout_version" {
  type    = string
  default = "1.4.0"
}

output "members" {
  value = fleet.prod.member_names
}

output "checkout" {
  value = rollout.checkout.deployments
}
