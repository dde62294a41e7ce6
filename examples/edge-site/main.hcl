# An edge site: node groups built from the edge nodes' `site` labels, an application rendered
# into each group (a lighter image in ningbo), a device bound to a node, and a message rule.

provider "kubeedge" {
  sandbox = "edge"
}

provider "kube" {
  sandbox = "edge"
}

# The edge nodes the cluster has, with their labels (edgecore registers them; the sandbox
# gets them from `flotilla sandbox up --edge-node`).
data "kubeedge_edge_nodes" "all" {}

locals {
  sites = toset([for node in data.kubeedge_edge_nodes.all.nodes : node.labels.site])
}

resource "kubeedge_node_group" "site" {
  for_each = local.sites
  name     = each.key
  spec     = { matchLabels = { site = each.key } }
}

resource "kube_namespace" "sensors" {
  name = "sensors"
}

resource "kubeedge_edge_application" "sensor_agent" {
  name      = "sensor-agent"
  namespace = kube_namespace.sensors.name
  spec = {
    workloadTemplate = {
      manifests = [{
        apiVersion = "apps/v1"
        kind       = "Deployment"
        metadata   = { name = "sensor-agent" }
        spec = {
          replicas = 1
          selector = { matchLabels = { app = "sensor-agent" } }
          template = {
            metadata = { labels = { app = "sensor-agent" } }
            spec     = { containers = [{ name = "agent", image = "registry.local/agent:1.0" }] }
          }
        }
      }]
    }
    workloadScope = {
      targetNodeGroups = [
        { name = kubeedge_node_group.site["hangzhou"].name },
        {
          name       = kubeedge_node_group.site["ningbo"].name
          overriders = { imageOverriders = [{ component = "Tag", operator = "replace", value = "1.0-lite" }] }
        },
      ]
    }
  }
}

resource "kubeedge_device_model" "thermometer" {
  name      = "thermometer"
  namespace = kube_namespace.sensors.name
  spec = {
    protocol   = "modbus"
    properties = [{ name = "temperature", type = "FLOAT", accessMode = "ReadOnly", unit = "celsius" }]
  }
}

resource "kubeedge_device" "thermometer_hz_1" {
  name      = "thermometer-hz-1"
  namespace = kube_namespace.sensors.name
  spec = {
    deviceModelRef = { name = kubeedge_device_model.thermometer.name }
    nodeName       = "hz-1"
    protocol       = { protocolName = "modbus" }
  }
}

resource "kubeedge_rule_endpoint" "api" {
  name      = "api"
  namespace = kube_namespace.sensors.name
  spec      = { ruleEndpointType = "rest", properties = {} }
}

resource "kubeedge_rule_endpoint" "bus" {
  name      = "bus"
  namespace = kube_namespace.sensors.name
  spec      = { ruleEndpointType = "eventbus", properties = {} }
}

resource "kubeedge_rule" "readings" {
  name      = "readings"
  namespace = kube_namespace.sensors.name
  spec = {
    source         = kubeedge_rule_endpoint.api.name
    sourceResource = { path = "/readings" }
    target         = kubeedge_rule_endpoint.bus.name
    targetResource = { topic = "readings" }
  }
}

output "node_groups" {
  value = sort([for g in kubeedge_node_group.site : g.name])
}
