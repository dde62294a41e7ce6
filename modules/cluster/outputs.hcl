output "name" {
  value       = var.name
  description = "The cluster's name."
}

output "kubeconfig" {
  value       = local.kubeconfig
  sensitive   = true
  description = "A kubeconfig document for the cluster (only its context)."
}

output "connection" {
  value       = var.sandbox != null ? { sandbox = var.sandbox, kubeconfig_raw = null } : { sandbox = null, kubeconfig_raw = local.kubeconfig }
  sensitive   = true
  description = "How providers reach the cluster: `{ sandbox, kubeconfig_raw }`, one of them set."
}

output "server" {
  value       = local.attached ? data.kube_connection.attached[0].server : nonsensitive(try(yamldecode(local.kubeconfig).clusters[0].cluster.server, null))
  description = "The API server's URL."
}

output "labels" {
  value       = local.labels
  description = "The cluster's labels, with `flotilla.dev/cluster = NAME`."
}

output "kubernetes_version" {
  value       = local.created ? var.kubernetes_version : null
  description = "The Kubernetes version of a created cluster (null for an attached one: it is what it is)."
}

output "created" {
  value       = local.created
  description = "Whether Cluster API created the cluster (false: attached)."
}

output "edge" {
  value       = var.edge
  description = "Whether this is an edge cluster (KubeEdge cloud side)."
}
