"""kvetch.utl"""
