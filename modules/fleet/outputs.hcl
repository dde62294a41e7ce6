output "name" {
  value       = var.name
  description = "The fleet's name."
}

output "members" {
  value = {
    for name, c in local.members : name => {
      name       = name
      connection = c.connection
      kubeconfig = c.kubeconfig
      server     = c.server
      labels     = merge(c.labels, var.labels, { "flotilla.dev/fleet" = var.name })
      joined     = local.karmada
      # Known once Flux serves HelmReleases there: addons wait for it by using it.
      flux = var.flux ? kube_crd.helm_release[name].id : null
    }
  }
  sensitive   = true
  description = "The members by name: `name`, `connection`, `kubeconfig` (sensitive), `server`, `labels`, whether `joined` to Karmada, and `flux` (set once Flux is installed)."
}

output "member_names" {
  value       = sort(keys(local.members))
  description = "The members' names, sorted (not sensitive: iterate over these, and look each member up in `members`)."
}

output "member_labels" {
  value       = { for name, c in local.members : name => merge(c.labels, var.labels, { "flotilla.dev/fleet" = var.name }) }
  description = "Each member's labels, by name (not sensitive: select members by these)."
}

output "flux" {
  value       = var.flux
  description = "Whether Flux is installed on the members (addons need it)."
}

output "karmada" {
  value       = local.karmada
  description = "Whether the fleet has a Karmada control plane (not sensitive, unlike `control_plane`)."
}

output "control_plane" {
  value = local.karmada ? {
    name       = var.control_plane.name
    connection = var.control_plane.connection
    kubeconfig = var.control_plane.kubeconfig
    server     = var.control_plane.server
    # Known once every member is joined and the control plane serves policy templates.
    joined   = { for name, m in karmada_cluster.member : name => m.id }
    policies = kube_crd.control_plane_policies[0].id
  } : null
  sensitive   = true
  description = "The Karmada control plane (null without one): `name`, `connection`, `kubeconfig`, `server`, and the `joined` members."
}
