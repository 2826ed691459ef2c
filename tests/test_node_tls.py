"""DICOM TLS against Orthanc's (``DicomTlsEnabled``, Orthanc 1.9+): a study in, results out,
both over TLS with certificates of one test authority, and peers without the right
certificate refused on either side."""

from __future__ import annotations

import ssl

import pytest
from pydicom import dcmread

from bids_arca.node import queue as states
from bids_arca.node.config import TlsConfig, load_config
from bids_arca.node.sender import echo
from bids_arca.node.tls import BCP195_TLS12_CIPHERS, client_context, server_context
from tests.certificates import authority, leaf
from tests.node_support import (
    all_files,
    finished,
    node_config,
    results_in,
    running_node,
    send,
    wait_for,
    write_phantom_study,
)
from tests.orthanc import ORTHANC, free_port, require_tool, start_orthanc


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """The hospital's authority, certificates it signed for the node and the PACS, and a
    stranger's certificate signed by another authority."""
    folder = tmp_path_factory.mktemp('pki')
    hospital, other = authority(folder, 'hospital-ca'), authority(folder, 'other-ca')
    return {
        'ca': hospital,
        'other_ca': other,
        'node': leaf(folder, 'node', hospital),
        'pacs': leaf(folder, 'pacs', hospital),
        'stranger': leaf(folder, 'stranger', other),
    }


def test_contexts_follow_the_non_downgrading_bcp195_profile(pki):
    tls = TlsConfig(pki['node'].certificate, pki['node'].key, pki['ca'].certificate)
    for context in (server_context(tls, require_client_certificate=True), client_context(tls)):
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        tls12 = {c['name'] for c in context.get_ciphers() if c['protocol'] == 'TLSv1.2'}
        assert tls12 and tls12 <= set(BCP195_TLS12_CIPHERS.split(':'))
        assert context.verify_mode == ssl.CERT_REQUIRED
    assert client_context(tls).check_hostname
    optional = server_context(tls, require_client_certificate=False)
    assert optional.verify_mode == ssl.CERT_OPTIONAL


@pytest.mark.slow
def test_study_over_tls_from_orthanc_and_results_back_strangers_refused(tmp_path, pki):
    require_tool(ORTHANC, 'orthanc')
    series = write_phantom_study(tmp_path / 'study')
    files = all_files(series)
    study_uid = dcmread(files[0]).StudyInstanceUID
    port = free_port()
    pacs = start_orthanc(
        tmp_path / 'orthanc',
        options={
            'DicomTlsEnabled': True,
            'DicomTlsCertificate': str(pki['pacs'].certificate),
            'DicomTlsPrivateKey': str(pki['pacs'].key),
            'DicomTlsTrustedCertificates': str(pki['ca'].certificate),
            'DicomTlsRemoteCertificateRequired': True,
            'DicomModalities': {
                'node': {'AET': 'BIDSARCA', 'Host': '127.0.0.1', 'Port': port, 'UseDicomTls': True}
            },
        },
    )
    node_tls = TlsConfig(pki['node'].certificate, pki['node'].key, pki['ca'].certificate)
    config = node_config(
        tmp_path / 'node',
        port=port,
        health_port=0,
        destination=(pacs.aet, pacs.dicom_port),
        tls=node_tls,
    )
    one = files[:1]
    try:
        pacs.upload(files)  # over HTTP: Orthanc's DICOM port speaks TLS only
        with running_node(config) as node:
            # Refused by the node: plain DICOM, TLS without a certificate, and a certificate
            # that the hospital's authority did not sign.
            bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            bare.load_verify_locations(pki['ca'].certificate)
            stranger = client_context(
                TlsConfig(pki['stranger'].certificate, pki['stranger'].key, pki['ca'].certificate)
            )
            for context in (None, bare, stranger):
                with pytest.raises(ConnectionError, match='not established'):
                    send(one, port, tls=context)
            assert node.queue.get(study_uid) is None

            (orthanc_id,) = pacs.rest(
                '/tools/find', {'Level': 'Study', 'Query': {'StudyInstanceUID': study_uid}}
            )
            pacs.rest('/modalities/node/store', {'Resources': [orthanc_id], 'Synchronous': True})
            done = wait_for(lambda: finished(node, study_uid), 120, 'the study to finish')
            assert (done.state, done.instances, done.calling_ae) == (states.DONE, 24, 'ORTHANC')
            assert 'stored at ORTHANC' in node.queue.events(study_uid)[-1][3]
            # A client with a certificate of the hospital's authority is served (a repeat: no-op).
            assert send(one, port, tls=client_context(node_tls)) == [0]
            assert node.queue.get(study_uid).generation == 1
        results = results_in(pacs, study_uid)
        assert [len(s['Instances']) for s in results['seg']] == [1]
        assert [len(s['Instances']) for s in results['overlay']] == [6]

        # The node's C-ECHO (its health check) goes over TLS too; a PACS certificate that the
        # node's authorities did not sign, or plain DICOM to a TLS port, fails.
        destination = load_config(config).destination
        assert echo(destination, 'BIDSARCA', node_tls)[0]
        distrust = TlsConfig(
            node_tls.certificate, node_tls.private_key, pki['other_ca'].certificate
        )
        assert not echo(destination, 'BIDSARCA', distrust)[0]
        plain = load_config(
            node_config(
                tmp_path / 'plain',
                port=free_port(),
                health_port=0,
                destination=(pacs.aet, pacs.dicom_port),
            )
        ).destination
        assert not echo(plain, 'BIDSARCA', None)[0]
    finally:
        pacs.stop()
