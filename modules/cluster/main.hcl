# A cluster: created with Cluster API on a management cluster, or attached (a sandbox cluster,
# or a kubeconfig and context). Either way it ends up as a connection other blocks use.

locals {
  created  = var.management != null
  attached = !local.created
  # A management cluster given as a cluster block brings its connection; a bare connection
  # object is used as it is.
  management = local.created ? try(var.management.connection, var.management) : null
}

# The management cluster, when the cluster is created (no instance otherwise).
provider "capi" {
  alias          = "management"
  for_each       = local.created ? { management = local.management } : {}
  sandbox        = try(each.value.sandbox, null)
  kubeconfig_raw = try(each.value.kubeconfig_raw, null)
}

# The attached cluster itself (no instance when the cluster is created).
provider "kube" {
  alias      = "attached"
  for_each   = local.attached ? { attached = var.name } : {}
  sandbox    = var.sandbox
  kubeconfig = var.kubeconfig
  context    = var.context
}

resource "capi_docker_cluster" "this" {
  count    = local.created ? 1 : 0
  provider = capi.management["management"]
  name     = var.name
  labels   = local.labels
  spec     = {}
}

# The control plane's machine template is named after its contents, so a new Kubernetes
# version makes a new template and rolls the control plane (Cluster API's upgrade), never a
# new cluster.
resource "capi_docker_machine_template" "control_plane" {
  count    = local.created ? 1 : 0
  provider = capi.management["management"]
  name     = "${var.name}-control-plane"
  spec = {
    template = {
      spec = { customImage = "kindest/node:${var.kubernetes_version}" }
    }
  }
}

resource "capi_kubeadm_control_plane" "this" {
  count    = local.created ? 1 : 0
  provider = capi.management["management"]
  name     = "${var.name}-control-plane"
  spec = {
    replicas = var.control_plane_replicas
    version  = var.kubernetes_version
    machineTemplate = {
      spec = {
        infrastructureRef = {
          apiGroup = "infrastructure.cluster.x-k8s.io"
          kind     = "DockerMachineTemplate"
          name     = capi_docker_machine_template.control_plane[0].object_name
        }
      }
    }
  }
}

resource "capi_cluster" "this" {
  count    = local.created ? 1 : 0
  provider = capi.management["management"]
  name     = var.name
  labels   = local.labels
  spec = {
    clusterNetwork = {
      pods = { cidrBlocks = [var.pod_cidr] }
    }
    controlPlaneRef = {
      apiGroup = "controlplane.cluster.x-k8s.io"
      kind     = "KubeadmControlPlane"
      name     = capi_kubeadm_control_plane.this[0].name
    }
    infrastructureRef = {
      apiGroup = "infrastructure.cluster.x-k8s.io"
      kind     = "DockerCluster"
      name     = capi_docker_cluster.this[0].name
    }
  }
  timeouts {
    create = "10m"
  }
}

data "kube_connection" "attached" {
  count    = local.attached ? 1 : 0
  provider = kube.attached["attached"]
}

locals {
  labels = merge(
    var.labels,
    { "flotilla.dev/cluster" = var.name },
    var.edge ? { "flotilla.dev/edge" = "true" } : {},
  )
  kubeconfig = local.created ? capi_cluster.this[0].kubeconfig : data.kube_connection.attached[0].kubeconfig
}
