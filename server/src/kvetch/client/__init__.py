"""kvetch.client"""
