# A management cluster, one workload cluster made with Cluster API, and objects created
# inside the new cluster through its kubeconfig, all in one apply.

variable "kubernetes_version" {
  type    = string
  default = "v1.31.2"
}

# The management cluster: a sandbox cluster named "mgmt" (Cluster API installed on demand).
# For a real fleet, use `kubeconfig = "~/.kube/config"` and `context = "mgmt"` instead.
provider "capi" {
  sandbox = "mgmt"
}

resource "capi_docker_cluster" "beijing" {
  name = "beijing"
  spec = {}
}

resource "capi_docker_machine_template" "control_plane" {
  name = "beijing-control-plane"
  spec = {
    template = {
      spec = { customImage = "kindest/node:${var.kubernetes_version}" }
    }
  }
}

resource "capi_kubeadm_control_plane" "beijing" {
  name = "beijing-control-plane"
  spec = {
    replicas = 1
    version  = var.kubernetes_version
    machineTemplate = {
      spec = {
        infrastructureRef = {
          apiGroup = "infrastructure.cluster.x-k8s.io"
          kind     = "DockerMachineTemplate"
          name     = capi_docker_machine_template.control_plane.object_name
        }
      }
    }
  }
}

resource "capi_cluster" "beijing" {
  name = "beijing"
  spec = {
    clusterNetwork = {
      pods = { cidrBlocks = ["192.168.0.0/16"] }
    }
    controlPlaneRef = {
      apiGroup = "controlplane.cluster.x-k8s.io"
      kind     = "KubeadmControlPlane"
      name     = capi_kubeadm_control_plane.beijing.name
    }
    infrastructureRef = {
      apiGroup = "infrastructure.cluster.x-k8s.io"
      kind     = "DockerCluster"
      name     = capi_docker_cluster.beijing.name
    }
  }
  timeouts {
    create = "5m"
  }
}

# The new cluster, reached through the kubeconfig Cluster API wrote for it. Its
# configuration is known only once the cluster exists: flotilla plans these objects as
# "known after apply" and plans them again, for real, during the same apply.
provider "kube" {
  alias          = "beijing"
  kubeconfig_raw = capi_cluster.beijing.kubeconfig
}

resource "kube_namespace" "apps" {
  provider = kube.beijing
  name     = "apps"
  labels   = { "team" = "platform" }
}

resource "kube_config_map" "settings" {
  provider  = kube.beijing
  name      = "settings"
  namespace = kube_namespace.apps.name
  data = {
    "region"  = "cn-north"
    "cluster" = capi_cluster.beijing.name
  }
}

output "cluster" {
  value = capi_cluster.beijing.id
}

output "kubeconfig" {
  value     = capi_cluster.beijing.kubeconfig
  sensitive = true
}
