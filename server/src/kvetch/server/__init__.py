"""kvetch.server"""
