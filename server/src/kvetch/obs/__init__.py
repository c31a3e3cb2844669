"""kvetch.obs"""
