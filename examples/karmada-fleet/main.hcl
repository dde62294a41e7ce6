# A Karmada control plane and two members: both joined, and one Deployment on the control
# plane divided between them 2:1 by static weight, each copy labelled with its member's name.

# The control plane: a sandbox cluster named "karmada" (Karmada's CRDs installed on demand).
# For a real control plane, use `kubeconfig = "~/.kube/karmada.config"` instead.
provider "karmada" {
  sandbox = "karmada"
}

provider "kube" {
  alias   = "karmada"
  sandbox = "karmada"
}

# The members: two more sandbox clusters. Their connections are handed to Karmada.
provider "kube" {
  alias   = "beijing"
  sandbox = "beijing"
}

provider "kube" {
  alias   = "shanghai"
  sandbox = "shanghai"
}

locals {
  members = {
    beijing  = { weight = 2, region = "cn-north" }
    shanghai = { weight = 1, region = "cn-east" }
  }
}

data "kube_connection" "beijing" {
  provider = kube.beijing
}

data "kube_connection" "shanghai" {
  provider = kube.shanghai
}

resource "karmada_cluster" "beijing" {
  name       = "beijing"
  kubeconfig = data.kube_connection.beijing.kubeconfig
  spec       = { region = local.members.beijing.region }
}

resource "karmada_cluster" "shanghai" {
  name       = "shanghai"
  kubeconfig = data.kube_connection.shanghai.kubeconfig
  spec       = { region = local.members.shanghai.region }
}

resource "kube_namespace" "apps" {
  provider = kube.karmada
  name     = "apps"
}

# The resource template: Karmada does not run it, it copies it to the members.
resource "kube_manifest" "web" {
  provider = kube.karmada
  manifest = {
    apiVersion = "apps/v1"
    kind       = "Deployment"
    metadata   = { name = "web", namespace = kube_namespace.apps.name }
    spec = {
      replicas = 3
      selector = { matchLabels = { app = "web" } }
      template = {
        metadata = { labels = { app = "web" } }
        spec     = { containers = [{ name = "web", image = "nginx:1.27" }] }
      }
    }
  }
}

resource "karmada_override_policy" "region" {
  name      = "region"
  namespace = kube_namespace.apps.name
  spec = {
    resourceSelectors = [{ apiVersion = "apps/v1", kind = "Deployment", name = "web" }]
    overrideRules = [
      for member in [karmada_cluster.beijing.name, karmada_cluster.shanghai.name] : {
        targetCluster = { clusterNames = [member] }
        overriders    = { labelsOverrider = [{ operator = "add", value = { region = member } }] }
      }
    ]
  }
}

# Ready when Karmada has scheduled the Deployment and applied its copies in both members.
resource "karmada_propagation_policy" "web" {
  name      = "web"
  namespace = kube_namespace.apps.name
  spec = {
    resourceSelectors  = [{ apiVersion = "apps/v1", kind = "Deployment", name = kube_manifest.web.manifest.metadata.name }]
    dependentOverrides = [karmada_override_policy.region.name]
    placement = {
      clusterAffinity = { clusterNames = [karmada_cluster.beijing.name, karmada_cluster.shanghai.name] }
      replicaScheduling = {
        replicaSchedulingType     = "Divided"
        replicaDivisionPreference = "Weighted"
        weightPreference = {
          staticWeightList = [
            for name, m in local.members : {
              targetCluster = { clusterNames = [name] }
              weight        = m.weight
            }
          ]
        }
      }
    }
  }
  depends_on = [karmada_cluster.beijing, karmada_cluster.shanghai]
}

output "members" {
  value = [karmada_cluster.beijing.name, karmada_cluster.shanghai.name]
}
