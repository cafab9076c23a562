output "reserved_addresses" {
  description = "The addresses to whitelist at your partners: every node of the public pool calls out from one of these."
  value       = var.ipv6 ? local.ipv6_pool : aws_eip.pool[*].public_ip
}

output "cluster_name" {
  description = "The EKS cluster."
  value       = module.eks.cluster_name
}

output "pinip_role_arn" {
  description = "The IAM role pinip's ServiceAccount assumes (IRSA)."
  value       = aws_iam_role.pinip.arn
}

output "kubeconfig_command" {
  description = "Point kubectl at the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}
