terraform {
  required_version = ">= 1.6"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = ">= 6.0, < 8.0"
    }
    # pinip's API key (auth = "api_key").
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
    # Renders deploy/overlays/oci as `kubectl apply -k` would, and applies it.
    kustomization = {
      source  = "kbst/kustomization"
      version = "~> 0.9"
    }
  }
}

# Credentials from ~/.oci/config (or the OCI_* / TF_VAR_* variables the provider reads).
provider "oci" {
  region = var.region
}

data "oci_containerengine_cluster_kube_config" "main" {
  cluster_id = oci_containerengine_cluster.main.id
}

# The cluster's API with a short-lived token from `oci ce cluster generate-token` (the
# kubeconfig OKE hands out), so the OCI CLI must be installed where terraform runs.
provider "kustomization" {
  kubeconfig_raw = data.oci_containerengine_cluster_kube_config.main.content
}
